// Embedded in Shopify's admin, the session cookie may not reach us from inside the frame, so
// every form post carries a fresh App Bridge id token instead (the server verifies it).
// Standalone pages do not load App Bridge, and this does nothing there.
(function () {
  "use strict";
  if (!window.shopify || typeof window.shopify.idToken !== "function") { return; }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.method.toLowerCase() !== "post" || form.dataset.idTokenAdded) { return; }
    event.preventDefault();
    window.shopify.idToken().then(function (token) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "id_token";
      input.value = token;
      form.appendChild(input);
      form.dataset.idTokenAdded = "1";
      form.submit();
    });
  });
}());
