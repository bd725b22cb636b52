/* Lojal rewards widget: <lojal-rewards api token shop locale customer position>.
 * A dependency-free Web Component rendering in Shadow DOM; it defines the element and nothing
 * else global. Load it with `defer`. It fetches /program (+ /me for a shopper) when the browser
 * is idle after the page loaded, or at once on the first open; activity on the first open.
 * Shopper = a `token` attribute (signed customer token) or `customer` (app proxy: the proxy
 * signs, the theme only says someone is logged in). Without either: the guest view.
 * Every handler catches its errors: a failing API shows a small message, never a page error. */
(() => {
  const W = window, D = document, NAME = 'lojal-rewards';
  if (!W.customElements || customElements.get(NAME)) return;

  const CSS = `:host{position:fixed;z-index:2147483000;bottom:20px;right:20px;--a:var(--lojal-accent,BRAND);--o:var(--lojal-on-accent,#fff);--f:var(--lojal-fg,#1f2328);--b:var(--lojal-bg,#fff);--r:var(--lojal-radius,12px)}
:host([position=left]){right:auto;left:20px}
.r{all:initial;display:block;font:14px/1.45 var(--lojal-font,system-ui,-apple-system,"Segoe UI",Roboto,sans-serif);color:var(--f)}
*{box-sizing:border-box;margin:0;font:inherit;color:inherit}
[hidden]{display:none!important}
button,.b{display:inline-block;cursor:pointer;border:0;border-radius:var(--r);padding:7px 14px;background:var(--a);color:var(--o);font-weight:600;text-decoration:none;text-align:center}
button[disabled]{opacity:.45;cursor:default}
:focus-visible{outline:2px solid var(--a);outline-offset:2px}
.l{display:flex;gap:8px;align-items:center;border-radius:999px;padding:12px 18px;box-shadow:0 4px 16px #0003}
.l b{background:#fff3;border-radius:999px;padding:0 8px}
.p{position:absolute;bottom:62px;right:0;width:min(360px,calc(100vw - 40px));max-height:min(600px,calc(100vh - 100px));overflow:auto;padding:16px;background:var(--b);border-radius:var(--r);box-shadow:0 10px 40px #0004}
:host([position=left]) .p{right:auto;left:0}
.h{display:flex;justify-content:space-between;align-items:center;margin-bottom:6px}
h2{font-size:18px;font-weight:700}
h3{font-size:12px;font-weight:700;text-transform:uppercase;letter-spacing:.05em;opacity:.7;margin:16px 0 4px}
.x{background:none;color:var(--f);font-size:22px;line-height:1;padding:2px 8px}
.n{font-size:30px;font-weight:800;color:var(--a)}
.g{height:8px;margin:6px 0 2px;border-radius:4px;background:#0001;overflow:hidden}
.g i{display:block;height:100%;background:var(--a)}
ul{list-style:none;padding:0}
li{display:flex;justify-content:space-between;align-items:center;gap:8px;padding:7px 0;border-top:1px solid #0001}
small,.m{opacity:.7;font-size:12px}
.c{display:flex;justify-content:space-between;align-items:center;gap:8px;margin:10px 0;padding:10px;border:2px dashed var(--a);border-radius:var(--r)}
code{font:700 16px ui-monospace,monospace;letter-spacing:.04em}
.w{display:flex;gap:6px}
input{flex:1;min-width:0;padding:6px 8px;border:1px solid #0003;border-radius:var(--r);background:none}
.e{color:#b42318;margin:8px 0}
.k{margin-top:12px;display:flex;gap:12px;align-items:center}
.z{position:fixed;opacity:0}`;

  // Children may be nested lists and may hold null/false/0 from `cond && node`: skipped.
  const flat = (kids) => kids.flat(9).filter(Boolean);
  // h('tag', {attr, text, onclick}, ...children): API text only ever goes in as textContent.
  const h = (tag, attrs, ...kids) => {
    const el = D.createElement(tag);
    for (const k in attrs || {}) {
      const v = attrs[k];
      if (v == null || v === false) continue;
      if (k == 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    el.append(...flat(kids));
    return el;
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  // Links from the API only as http(s) or same-site paths: never javascript: URLs.
  const safeUrl = (u) => (/^(https?:\/\/|\/(?!\/))/i.test(u || '') ? u : null);
  const uuid = () => (crypto.randomUUID ? crypto.randomUUID()
    : [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join(''));
  const fill = (s, o) => String(s || '').replace(/\{(\w+)\}/g, (m, k) => (k in o ? o[k] : m));

  class LojalRewards extends HTMLElement {
    connectedCallback() {
      if (this.root) return; // moved in the DOM: keep state
      this.safe(() => this.setup());
    }

    // Run f (sync or async) so that nothing it throws reaches the page.
    safe(f) {
      try {
        const r = f();
        if (r && r.catch) r.catch((e) => this.fail(e));
      } catch (e) { this.fail(e); }
    }

    fail(e) {
      this.error = (e && e.message) || 'Error';
      if (this.isOpen) this.render();
    }

    setup() {
      this.t = {}; this.keys = {}; this.prog = this.me = this.acts = null;
      const root = this.root = this.attachShadow({ mode: 'open' });
      this.sty = h('style');
      try {
        this.sheet = new CSSStyleSheet();
        root.adoptedStyleSheets = [this.sheet];
      } catch (e) { this.sheet = null; }
      this.theme();
      this.lbl = h('span', { text: 'Rewards' });
      this.bal = h('b', { hidden: true });
      this.btn = h('button', { type: 'button', class: 'l', 'aria-expanded': 'false', 'aria-haspopup': 'dialog',
        'aria-controls': 'p', onclick: () => this.safe(() => (this.isOpen ? this.close() : this.open())) }, this.lbl, this.bal);
      this.ttl = h('h2', { id: 't', text: 'Rewards' });
      this.xb = h('button', { type: 'button', class: 'x', 'aria-label': 'Close', onclick: () => this.safe(() => this.close()) }, '\u00d7');
      this.body = h('div');
      this.panel = h('div', { id: 'p', class: 'p', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 't', hidden: true },
        h('div', { class: 'h' }, this.ttl, this.xb), this.body);
      // .r resets everything the page's styles pass down to the element (fonts, colours, spacing).
      root.append(...(this.sheet ? [] : [this.sty]), h('div', { class: 'r' }, this.btn, this.panel));
      root.addEventListener('keydown', (e) => this.safe(() => this.key(e)));
      this.outside = (e) => { if (!e.composedPath().includes(this)) this.safe(() => this.close(true)); };
      const idle = W.requestIdleCallback || ((f) => setTimeout(f, 300));
      const go = () => idle(() => this.safe(() => this.load()), { timeout: 4000 });
      D.readyState == 'complete' ? go() : W.addEventListener('load', go, { once: true });
    }

    // Constructed stylesheets are not inline styles, so a shop's strict CSP cannot block them.
    theme() {
      const c = this.prog && this.prog.shop && this.prog.shop.brand_color;
      const css = CSS.replace('BRAND', /^#[0-9a-f]{3,8}$/i.test(c || '') ? c : '#2d6cdf');
      if (this.sheet) this.sheet.replaceSync(css);
      else this.sty.textContent = css;
    }

    get member() { return this.hasAttribute('token') || this.hasAttribute('customer'); }

    get loc() { return (this.me && this.me.locale) || (this.prog && this.prog.locale) || this.getAttribute('locale') || undefined; }

    num(v) {
      try { return new Intl.NumberFormat(this.loc).format(v); } catch (e) { return String(v); }
    }

    // One API call: {status, data}; a non-2xx answer throws an Error with .status, .code and the API's message.
    async api(path, method, body, headers) {
      const base = (this.getAttribute('api') || '/apps/lojal/v1').replace(/\/+$/, '');
      const q = new URLSearchParams();
      for (const a of ['shop', 'locale']) if (this.getAttribute(a)) q.set(a, this.getAttribute(a));
      const hd = Object.assign({ Accept: 'application/json' }, headers);
      const tok = this.getAttribute('token');
      if (tok) hd.Authorization = 'Bearer ' + tok;
      if (body) hd['Content-Type'] = 'application/json';
      const qs = String(q);
      const r = await fetch(base + path + (qs ? (path.includes('?') ? '&' : '?') + qs : ''), {
        method: method || 'GET', headers: hd, body: body && JSON.stringify(body), credentials: tok ? 'omit' : 'same-origin' });
      const data = await r.json().catch(() => null);
      if (!r.ok) {
        const e = new Error((data && data.error && data.error.message) || 'HTTP ' + r.status);
        e.status = r.status; e.code = data && data.error && data.error.code;
        throw e;
      }
      return { status: r.status, data };
    }

    // Retry network errors, 429 and 5xx twice with back-off; the caller's headers (its
    // Idempotency-Key) are the same on every attempt, so a retried redemption happens once.
    async retry(f) {
      for (let i = 0; ; i++) {
        try { return await f(); } catch (e) {
          if (i >= 2 || (e.status && e.status < 500 && e.status != 429)) throw e;
          await sleep(600 * 2 ** i);
        }
      }
    }

    load() {
      if (!this.loading) {
        this.loading = (async () => {
          const [p, m] = await Promise.all([
            this.retry(() => this.api('/program')),
            // 401: not signed in after all; 404: signed in but not known to the program yet. Both see the guest view.
            this.member ? this.retry(() => this.api('/me')).catch((e) => { if (e.status == 401 || e.status == 404) return null; throw e; }) : null,
          ]);
          this.prog = p.data; this.me = m && m.data; this.t = this.prog.texts || {}; this.error = null;
          this.theme(); this.label();
          if (this.isOpen) { this.render(); this.activity(); }
        })().catch((e) => { this.loading = null; throw e; });
      }
      return this.loading;
    }

    label() {
      const t = this.t, m = this.me;
      this.lbl.textContent = t.launcher || t.title || 'Rewards';
      this.ttl.textContent = t.title || 'Rewards';
      this.xb.setAttribute('aria-label', t.close || 'Close');
      this.bal.hidden = !m;
      if (m) this.bal.textContent = m.points_balance_formatted + ' ' + (t.points || '');
    }

    open() {
      this.isOpen = true;
      this.btn.setAttribute('aria-expanded', 'true');
      this.panel.hidden = false;
      this.render();
      this.xb.focus();
      D.addEventListener('click', this.outside, true);
      this.safe(() => this.load().then(() => this.activity()));
    }

    // Escape/close button: back to the launcher. An outside click leaves focus where the shopper put it.
    close(keepFocus) {
      if (!this.isOpen) return;
      this.isOpen = false;
      this.btn.setAttribute('aria-expanded', 'false');
      this.panel.hidden = true;
      D.removeEventListener('click', this.outside, true);
      if (!keepFocus) this.btn.focus();
    }

    disconnectedCallback() { D.removeEventListener('click', this.outside, true); }

    key(e) {
      if (!this.isOpen) return;
      if (e.key == 'Escape') { e.preventDefault(); e.stopPropagation(); this.close(); return; }
      if (e.key != 'Tab') return;
      const f = [...this.panel.querySelectorAll('button:not([disabled]),a[href],input')];
      const a = this.root.activeElement, first = f[0], last = f[f.length - 1];
      if (e.shiftKey ? a == first : a == last) { e.preventDefault(); (e.shiftKey ? last : first).focus(); }
    }

    async activity() {
      if (!this.me || this.acts) return;
      this.acts = [];
      try { this.acts = (await this.api('/me/activity?limit=5')).data.entries || []; } catch (e) { this.acts = null; }
      this.render();
    }

    // Rebuild the panel body; the focused control (by its data-k) keeps focus across the rebuild.
    render() {
      if (!this.isOpen) return;
      const a = this.root.activeElement, k = a && a.dataset.k;
      const t = this.t, p = this.prog, m = this.me;
      let kids;
      if (!p) kids = this.error ? [h('p', { class: 'e', role: 'alert', text: t.error || 'Rewards are unavailable right now.' }),
        h('button', { type: 'button', 'data-k': 'again', text: t.retry || 'Try again', onclick: () => this.safe(() => this.load()) })]
        : [h('p', { class: 'm', role: 'status', text: '\u2026' })];
      else kids = m ? this.memberView(t, m) : this.guestView(t, p);
      this.body.replaceChildren(...flat(kids));
      const again = k && this.body.querySelector(`[data-k="${k}"]`);
      if (again) again.focus();
    }

    guestView(t, p) {
      const links = p.links || {}, join = safeUrl(links.join_url), login = safeUrl(links.login_url);
      return [
        h('p', { text: t.guest_intro }),
        (p.earn_rules || []).length && h('ul', {}, p.earn_rules.map((r) => h('li', {}, h('span', { text: r.title }), h('small', { text: r.description })))),
        (p.rewards || []).length && [h('h3', { text: t.redeem }), h('ul', {}, p.rewards.map((r) =>
          h('li', {}, h('span', { text: r.name }), h('small', { text: this.num(r.points_cost) + ' ' + (t.points || '') }))))],
        h('div', { class: 'k' }, join && h('a', { class: 'b', href: join, 'data-k': 'join', text: t.join || 'Join' }),
          login && h('a', { href: login, 'data-k': 'login', text: t.log_in || 'Log in' })),
      ];
    }

    memberView(t, m) {
      const nt = m.next_tier, pct = nt ? Math.round(Math.max(0, Math.min(1, +nt.progress || 0)) * 100) : 0;
      const is = this.issued, rewards = m.rewards || [];
      return [
        m.customer && m.customer.first_name && h('p', { class: 'm', text: m.customer.first_name }),
        h('p', {}, h('span', { class: 'n', text: m.points_balance_formatted }), ' ', t.points),
        m.tier && h('p', { text: m.tier.name }),
        nt && [
          h('div', { class: 'g', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct,
            'aria-label': t.next_tier || nt.name }, this.fillBar(pct)),
          h('small', { text: fill(t.next_tier, { remaining: nt.remaining_formatted, tier: nt.name, name: nt.name, points: t.points })
            + (/\{/.test(t.next_tier || '') ? '' : ': ' + nt.remaining_formatted + ' \u2192 ' + nt.name) }),
        ],
        is && h('div', { class: 'c', role: 'status' }, h('div', {}, h('small', { text: (t.your_code ? t.your_code + ' \u00b7 ' : '') + is.reward.name }), h('br'),
          h('code', { text: is.code })), this.copyButton('code', is.code)),
        this.error && h('p', { class: 'e', role: 'alert', text: this.error }),
        h('h3', { text: t.redeem }),
        rewards.length ? h('ul', {}, rewards.map((r) => h('li', {}, h('span', {}, r.name, h('br'), h('small', { text: this.num(r.points_cost) + ' ' + (t.points || '') })),
          r.affordable && h('button', { type: 'button', 'data-k': 'r' + r.id, disabled: this.busy != null,
            'aria-busy': this.busy == r.id ? 'true' : null, text: t.redeem, onclick: () => this.safe(() => this.redeem(r)) }))))
          : h('p', { class: 'm', text: t.no_rewards }),
        m.referral_url && [h('h3', { text: t.refer }), h('div', { class: 'w' },
          h('input', { readonly: true, value: m.referral_url, 'aria-label': t.refer, 'data-k': 'ref' }),
          this.copyButton('ref', m.referral_url),
          navigator.share && h('button', { type: 'button', 'data-k': 'share', text: '\u2197', 'aria-label': t.refer,
            onclick: () => navigator.share({ url: m.referral_url }).catch(() => 0) }))],
        this.acts && this.acts.length > 0 && [h('h3', { text: t.activity }), h('ul', {}, this.acts.map((x) => h('li', {},
          h('span', {}, x.description, h('br'), h('small', { text: new Date(x.created_at).toLocaleDateString(this.loc) })),
          h('b', { text: (x.points > 0 ? '+' : '') + this.num(x.points) }))))],
      ];
    }

    fillBar(pct) {
      const i = h('i');
      i.style.width = pct + '%';
      return i;
    }

    // The "Copied" state lives on the element, not the button: a re-render keeps it.
    copyButton(k, text) {
      const t = this.t;
      return h('button', { type: 'button', 'data-k': 'copy-' + k, text: this.copied == k ? t.copied || 'Copied' : t.copy || 'Copy',
        onclick: () => this.safe(async () => {
          let ok = false;
          try { await navigator.clipboard.writeText(text); ok = true; } catch (e) {
            // Older browsers / insecure pages: copy through a selected off-screen textarea.
            const ta = h('textarea', { class: 'z', readonly: true, 'aria-hidden': 'true' });
            ta.value = text; this.root.append(ta); ta.select();
            try { ok = D.execCommand('copy'); } catch (e2) { ok = false; }
            ta.remove();
          }
          if (!ok) return;
          this.copied = k; this.render();
          clearTimeout(this.copyTimer);
          this.copyTimer = setTimeout(() => { this.copied = null; this.render(); }, 2500);
        }) });
    }

    // Read /me again (balance, rewards and their costs); if this read fails, what shows stays.
    fresh() {
      this.api('/me').then((x) => { this.me = x.data; this.acts = null; this.label(); this.render(); this.activity(); }, () => 0);
    }

    // One click = one Idempotency-Key, kept for that reward until the server gives a definite
    // answer, so retries (automatic, or the shopper clicking again after a network error) never redeem twice.
    async redeem(r) {
      if (this.busy != null) return;
      const key = this.keys[r.id] || (this.keys[r.id] = uuid());
      this.busy = r.id; this.error = null; this.render();
      try {
        // The cost shown goes along: if the shop changed it since, the API refuses (409) rather than charge another price.
        let d = (await this.retry(() => this.api('/me/redemptions', 'POST', { reward_id: r.id, points_cost: r.points_cost }, { 'Idempotency-Key': key }))).data;
        delete this.keys[r.id];
        // `cancelling` (staff at work) is no outcome yet: the code may stay, or the points come back.
        const open = (x) => !x.code && (x.status == 'pending' || x.status == 'cancelling');
        for (let i = 0; open(d) && i < 40; i++) {
          await sleep(Math.min(500 * (i + 1), 3000));
          d = (await this.retry(() => this.api('/me/redemptions/' + d.id))).data;
        }
        if (!d.code) {
          throw new Error(open(d) ? this.t.pending || 'Your code is on its way; check back in a minute.'
            : this.t.failed || 'That did not work; your points are back.');
        }
        this.issued = d;
        this.fresh(); // the new balance and what is still affordable
      } catch (e) {
        if (e.status && e.status < 500) delete this.keys[r.id];
        this.error = e.message;
        if (e.code == 'reward_cost_changed') this.fresh(); // show the new price next to the message
      } finally {
        this.busy = null;
        this.render();
        // The clicked button was disabled meanwhile: focus the new code, or that button again.
        const c = this.body.querySelector(this.error ? `[data-k="r${r.id}"]` : '[data-k="copy-code"]');
        if (c) c.focus();
      }
    }
  }

  customElements.define(NAME, LojalRewards);

  // Referrals on Shopify (`platform="shopify"` or window.Shopify): a `?ref=<code>` in the URL
  // (from Lojal's /r/<code> link) is remembered in localStorage for 30 days and set as the cart
  // attribute `lojal_ref`, which the order carries. It is posted again while remembered
  // whenever the store's `cart` cookie differs from the one it was set on (a failed update, a
  // new cart after a checkout). Same pattern as the order parsers; every failure is silent.
  try {
    const el = D.querySelector(NAME), ls = W.localStorage, K = 'lojal_ref', ok = (c) => typeof c == 'string' && /^[A-Za-z0-9]{4,32}$/.test(c);
    const cart = () => (D.cookie.match(/(?:^|;\s*)cart=([^;]*)/) || [])[1] || '';
    if (W.Shopify || (el && el.getAttribute('platform') == 'shopify')) {
      const ref = new URLSearchParams(location.search).get('ref'), now = Date.now(), fresh = ok(ref);
      let s = null;
      try { s = JSON.parse(ls.getItem(K)); } catch (e) { s = null; }
      if (fresh) s = { c: ref, t: now };
      else if (!s || !ok(s.c) || !(now - s.t < 2592e6)) { ls.removeItem(K); s = null; }
      if (s && (fresh || s.k !== cart())) {
        ls.setItem(K, JSON.stringify(s));
        const root = W.Shopify && W.Shopify.routes && W.Shopify.routes.root;
        fetch((/^\/(?!\/)/.test(root) ? root.replace(/\/?$/, '/') : '/') + 'cart/update.js', {
          method: 'POST', headers: { 'Content-Type': 'application/json' }, credentials: 'same-origin',
          body: JSON.stringify({ attributes: { lojal_ref: s.c } }) })
          .then((r) => { if (r.ok) { s.k = cart(); ls.setItem(K, JSON.stringify(s)); } }).catch(() => 0);
      }
    }
  } catch (e) { /* no storage, no cookies: no referral carried, nothing broken */ }
})();
