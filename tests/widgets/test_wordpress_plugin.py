"""The WordPress plugin (widgets/woocommerce/lojal-rewards) run by real PHP inside a real WordPress:
Debian's `wordpress` package served by `php -S`, on a fresh MariaDB database per module.

WooCommerce is not packaged by Debian, so the checkout hooks that write `lojal_ref` into orders
stay text-checked in test_assets.py; everything that needs WordPress alone runs here.
Skipped (with the reason) where php, the wordpress package or MariaDB is missing; CI installs them.
"""
from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from app import PROJECT_ROOT
from widgets.assets import SCRIPT
from widgets.tokens import InvalidCustomerToken, MAX_LIFETIME_SECONDS, verify_customer_token
from tests.ports import free_port

WORDPRESS = Path("/usr/share/wordpress")
PLUGIN_DIR = PROJECT_ROOT / "widgets" / "woocommerce" / "lojal-rewards"
PLUGIN = "lojal-rewards/lojal-rewards.php"
MYSQL = ["mysql", "-h", "127.0.0.1", "-P", "3306", "-u", "root"]
API_URL = "https://lojal.test"  # the plugin only prints it into the page; it never calls it server-side


def _missing() -> str | None:
    if not shutil.which("php"):
        return "php is not installed (CI: apt-get install php-cli php-mysql wordpress)"
    if not (WORDPRESS / "wp-settings.php").exists():
        return "Debian's wordpress package is not installed (CI: apt-get install wordpress)"
    if subprocess.run(["php", "-r", "exit(extension_loaded('mysqli') ? 0 : 1);"]).returncode:
        return "php has no mysqli (CI: apt-get install php-mysql)"
    if not shutil.which("mysqladmin") or subprocess.run(
            ["mysqladmin", "-h", "127.0.0.1", "-P", "3306", "-u", "root", "ping"], capture_output=True).returncode:
        return "no MariaDB at 127.0.0.1:3306 for root"
    return None


_MISSING = _missing()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


@dataclass
class WordPressSite:
    url: str
    root: Path  # ABSPATH: symlinks into /usr/share/wordpress plus our wp-config.php and wp-content
    work: Path
    database: str
    shop_uid: str
    secret: str
    customer_id: int
    customer_password: str
    admin: requests.Session | None = None  # logged in as the administrator

    def php(self, code: str, *, installing: bool = False) -> str:
        """Runs `code` in a PHP process with WordPress loaded (as WP-CLI does); returns stdout."""
        script = self.work / f"run-{secrets.token_hex(4)}.php"
        script.write_text(
            "<?php\n"
            f"require {json.dumps(str(self.work / 'prepend.php'))};\n"
            + ("define('WP_INSTALLING', true);\n" if installing else "")
            + f"$_SERVER['HTTP_HOST'] = {json.dumps(self.url.removeprefix('http://'))};\n"
            "$_SERVER['REQUEST_URI'] = '/';\n"
            "require ABSPATH . 'wp-load.php';\n"
            "require_once ABSPATH . 'wp-admin/includes/upgrade.php';\n"
            "require_once ABSPATH . 'wp-admin/includes/plugin.php';\n"
            + code + "\n")
        done = subprocess.run(["php", str(script)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def option(self):
        return json.loads(self.php("echo json_encode(get_option('lojal_rewards', null));"))

    def log_in(self, user: str, password: str) -> requests.Session:
        browser = requests.Session()
        browser.get(f"{self.url}/wp-login.php").raise_for_status()  # sets wordpress_test_cookie
        response = browser.post(f"{self.url}/wp-login.php", allow_redirects=False, data={
            "log": user, "pwd": password, "wp-submit": "Log In", "testcookie": "1",
            "redirect_to": f"{self.url}/wp-admin/"})
        assert response.status_code == 302, response.text
        assert any(c.name.startswith("wordpress_logged_in_") for c in browser.cookies)
        return browser


def _build_root(work: Path, url: str, database: str) -> Path:
    # Debian's wp-config.php reads /etc/wordpress/config-<host>.php; ours is a test-owned root whose
    # PHP files are Debian's (symlinked) and whose config and wp-content are in the temp dir.
    root = work / "wordpress"
    root.mkdir()
    for entry in WORDPRESS.iterdir():
        if entry.name not in ("wp-config.php", "wp-content"):
            (root / entry.name).symlink_to(entry)
    (root / "wp-content" / "plugins").mkdir(parents=True)
    (root / "wp-content" / "themes").symlink_to(WORDPRESS / "wp-content" / "themes")
    # A copy, so nothing WordPress does to its plugins can touch the repository.
    shutil.copytree(PLUGIN_DIR, root / "wp-content" / "plugins" / "lojal-rewards")
    # PHP resolves symlinks in __DIR__, so Debian's wp-load.php would take /usr/share/wordpress as
    # ABSPATH (and its config): every request defines ours first.
    (work / "prepend.php").write_text(f"<?php\ndefine('ABSPATH', {json.dumps(str(root) + '/')});\n")
    keys = "".join(f"define('{k}', '{secrets.token_hex(32)}');\n" for k in (
        "AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
        "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT"))
    (root / "wp-config.php").write_text(
        "<?php\n"
        f"define('DB_NAME', '{database}');\ndefine('DB_USER', 'root');\ndefine('DB_PASSWORD', '');\n"
        "define('DB_HOST', '127.0.0.1:3306');\ndefine('DB_CHARSET', 'utf8mb4');\ndefine('DB_COLLATE', '');\n"
        + keys +
        f"define('WP_SITEURL', '{url}');\ndefine('WP_HOME', '{url}');\n"
        # No cron, updates or calls out of the machine: the page views are all the test does.
        "define('DISABLE_WP_CRON', true);\ndefine('AUTOMATIC_UPDATER_DISABLED', true);\n"
        "define('WP_HTTP_BLOCK_EXTERNAL', true);\n"
        f"define('WP_DEBUG', true);\ndefine('WP_DEBUG_DISPLAY', false);\n"
        f"define('WP_DEBUG_LOG', {json.dumps(str(work / 'debug.log'))});\n"
        "$table_prefix = 'wp_';\n"
        "require_once ABSPATH . 'wp-settings.php';\n")
    return root


def _wait_until_serving(url: str, server: subprocess.Popen) -> None:
    while True:  # polling; a server that dies fails at once
        assert server.poll() is None, "php -S exited"
        try:
            requests.get(f"{url}/wp-login.php", timeout=5)
            return
        except requests.ConnectionError:
            time.sleep(0.05)


def _save_settings(site: WordPressSite, admin: requests.Session, fields: dict) -> requests.Response:
    """Submits Settings > Lojal Rewards as the admin does: options.php, the registered setting's sanitizer."""
    page = admin.get(f"{site.url}/wp-admin/options-general.php?page=lojal-rewards")
    assert page.status_code == 200, page.text
    form = {name: re.search(rf'name="{name}" value="([^"]*)"', page.text)[1] for name in ("_wpnonce", "_wp_http_referer")}
    form |= {"option_page": "lojal_rewards", "action": "update"}
    form |= {f"lojal_rewards[{key}]": value for key, value in fields.items()}
    return admin.post(f"{site.url}/wp-admin/options.php", data=form, allow_redirects=False)


@pytest.fixture(scope="module")
def wordpress(tmp_path_factory):
    work = tmp_path_factory.mktemp("wordpress")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = f"lojal_wp_{secrets.token_hex(6)}"
    subprocess.run([*MYSQL, "-e", f"CREATE DATABASE {database} CHARACTER SET utf8mb4"], check=True)
    server = None
    try:
        root = _build_root(work, url, database)
        site = WordPressSite(url=url, root=root, work=work, database=database, shop_uid=f"shop-{secrets.token_hex(4)}",
                             secret=secrets.token_urlsafe(32), customer_id=0, customer_password=secrets.token_urlsafe(12))
        site.php("wp_install('Lojal test shop', 'admin', 'admin@example.test', false, '', 'admin-password');",
                 installing=True)
        # Real activation: WordPress checks the plugin's headers (Requires at least / PHP) first.
        site.customer_id = int(site.php(
            f"$activated = activate_plugin({json.dumps(PLUGIN)});\n"
            "if (is_wp_error($activated)) { fwrite(STDERR, $activated->get_error_message()); exit(1); }\n"
            f"echo wp_create_user('shopper', {json.dumps(site.customer_password)}, 'shopper@example.test');"))
        server = subprocess.Popen(
            ["php", "-d", f"auto_prepend_file={work / 'prepend.php'}", "-S", f"127.0.0.1:{port}", "-t", str(root)],
            cwd=work, stdout=subprocess.DEVNULL, stderr=(work / "server.log").open("w"),
            # Its workers are forked children: a session of their own, so one killpg ends them all.
            env={**os.environ, "PHP_CLI_SERVER_WORKERS": "2"}, start_new_session=True)
        _wait_until_serving(url, server)
        admin = site.log_in("admin", "admin-password")
        # Untidy input on purpose: the plugin's sanitizer, run by WordPress, is what stores it.
        saved = _save_settings(site, admin, {"api_url": f"  {API_URL}/ ", "shop_uid": site.shop_uid,
                                             "widget_secret": f" {site.secret} ", "position": "sideways",
                                             "accent": "red"})
        assert saved.status_code == 302 and "settings-updated=true" in saved.headers["Location"], saved.text
        site.admin = admin
        yield site
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait()
        subprocess.run([*MYSQL, "-e", f"DROP DATABASE IF EXISTS {database}"], check=True)


def _widget(html: str) -> dict[str, str]:
    tags = re.findall(r"<lojal-rewards\s([^>]*)></lojal-rewards>", html)
    assert len(tags) == 1, html
    return dict(re.findall(r'([a-z-]+)="([^"]*)"', tags[0]))


def _script_tag(html: str) -> str:
    # WordPress quotes attributes with ' (6.1) or " (6.3+).
    tags = re.findall(rf'<script\b[^>]*\bsrc=["\']{re.escape(API_URL)}/widget/static/{re.escape(SCRIPT)}[^>]*>', html)
    assert len(tags) == 1, html
    return tags[0]


def test_activated_plugin_stores_its_settings_through_its_sanitizer_and_never_prints_the_secret_back(wordpress):
    assert json.loads(wordpress.php(f"echo json_encode(is_plugin_active({json.dumps(PLUGIN)}));")) is True
    assert wordpress.option() == {"api_url": API_URL, "shop_uid": wordpress.shop_uid, "widget_secret": wordpress.secret,
                                  "position": "right", "accent": ""}
    page = wordpress.admin.get(f"{wordpress.url}/wp-admin/options-general.php?page=lojal-rewards").text
    assert wordpress.secret not in page and "saved; type to replace" in page
    # An empty secret field keeps the saved secret.
    saved = _save_settings(wordpress, wordpress.admin, {"api_url": API_URL, "shop_uid": wordpress.shop_uid,
                                                         "widget_secret": "", "position": "right", "accent": "#2d6cdf"})
    assert saved.status_code == 302
    assert wordpress.option()["widget_secret"] == wordpress.secret
    assert wordpress.option()["accent"] == "#2d6cdf"


def test_a_guest_page_defers_the_script_and_points_the_widget_at_the_api_with_no_token(wordpress, client):
    html = requests.get(f"{wordpress.url}/").text
    script = _script_tag(html)
    assert re.search(r"\sdefer[\s>=]", script), script
    assert client.get(re.search(r'src=.https://lojal\.test([^"\'?]+)', script)[1]).status_code == 200  # the app serves it
    widget = _widget(html)
    assert widget["api"] == f"{API_URL}/widget/v1" and widget["shop"] == wordpress.shop_uid
    assert widget["locale"] == "en" and "token" not in widget


def test_a_logged_in_customer_gets_a_token_lojal_verifies_as_that_wordpress_user(wordpress):
    browser = wordpress.log_in("shopper", wordpress.customer_password)
    html = browser.get(f"{wordpress.url}/").text
    assert re.search(r"\sdefer[\s>=]", _script_tag(html))
    token = _widget(html)["token"]
    assert verify_customer_token(token, wordpress.secret, wordpress.shop_uid) == str(wordpress.customer_id)
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["sub"] == str(wordpress.customer_id) and claims["aud"] == wordpress.shop_uid
    assert time.time() < claims["exp"] <= time.time() + MAX_LIFETIME_SECONDS
    with pytest.raises(InvalidCustomerToken):
        verify_customer_token(token, wordpress.secret + "x", wordpress.shop_uid)
    with pytest.raises(InvalidCustomerToken):
        verify_customer_token(token, wordpress.secret, "another-shop")


def _set_cookies(response: requests.Response) -> list[str]:
    return response.raw.headers.getlist("Set-Cookie")


def test_a_ref_link_sets_a_first_party_http_only_cookie_for_30_days(wordpress):
    response = requests.get(f"{wordpress.url}/?ref=Friend42")
    assert response.status_code == 200
    cookie = [c for c in _set_cookies(response) if c.startswith("lojal_ref=")]
    assert len(cookie) == 1, _set_cookies(response)
    attributes = [a.strip() for a in cookie[0].split(";")]
    assert attributes[0] == "lojal_ref=Friend42"
    max_age = int(next(a for a in attributes if a.startswith("Max-Age="))[len("Max-Age="):])
    assert 30 * 24 * 3600 - 60 <= max_age <= 30 * 24 * 3600
    assert {"path=/", "HttpOnly", "SameSite=Lax"} <= set(attributes)
    assert "secure" not in attributes  # plain http here; is_ssl() decides
    assert not any(a.lower().startswith("domain=") for a in attributes)  # first party: this host only


@pytest.mark.parametrize("code", ["abc", "x" * 33, "bad-code", "<script>"])
def test_an_invalid_ref_sets_no_cookie(wordpress, code):
    response = requests.get(f"{wordpress.url}/", params={"ref": code})
    assert response.status_code == 200
    assert not [c for c in _set_cookies(response) if c.startswith("lojal_ref=")]


def test_the_plugin_raised_no_php_notice_or_warning(wordpress):
    log = wordpress.work / "debug.log"
    lines = log.read_text().splitlines() if log.exists() else []
    # WP_DEBUG logs every PHP error here (WordPress 6.1's own PHP 8.2 deprecations too); none is ours.
    assert not [line for line in lines if "/plugins/lojal-rewards/" in line]


def test_deleting_the_plugin_runs_its_uninstall_which_deletes_its_option_and_so_the_widget_secret(wordpress):
    saved = wordpress.option()
    assert saved["widget_secret"] == wordpress.secret
    # What Delete on the Plugins screen runs before removing the files (uninstall.php, WP_UNINSTALL_PLUGIN).
    assert json.loads(wordpress.php(
        f"echo json_encode(is_uninstallable_plugin({json.dumps(PLUGIN)}));"
        f" uninstall_plugin({json.dumps(PLUGIN)});")) is True
    assert wordpress.option() is None
    assert "lojal_rewards" not in subprocess.run(
        [*MYSQL, "-N", "-e", "SELECT option_name FROM wp_options WHERE option_name LIKE 'lojal%'",
         wordpress.database], capture_output=True, text=True, check=True).stdout
