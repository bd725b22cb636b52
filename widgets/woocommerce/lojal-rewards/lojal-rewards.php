<?php
/**
 * Plugin Name:       Lojal Rewards
 * Description:       Shows the Lojal rewards widget (points, tiers, rewards, referral link) on your WooCommerce store.
 * Version:           1.0.0
 * Requires at least: 6.1
 * Requires PHP:      7.4
 * License:           MIT
 * Text Domain:       lojal-rewards
 *
 * Settings > Lojal Rewards holds the Lojal URL, the shop id and the widget secret (both shown by
 * Lojal after connecting the store). For a logged-in shopper the page carries a customer token
 * signed with that secret (HS256 JWT: aud = shop id, sub = WordPress user id, valid one hour),
 * which is how Lojal knows whose points to show; guests see the program and join/log-in links.
 */

if (!defined('ABSPATH')) {
    exit;
}

const LOJAL_REWARDS_VERSION = '1.0.0';
const LOJAL_REWARDS_OPTION = 'lojal_rewards';
const LOJAL_REWARDS_TOKEN_TTL = 3600;

function lojal_rewards_settings(): array
{
    $saved = get_option(LOJAL_REWARDS_OPTION, []);
    return wp_parse_args(is_array($saved) ? $saved : [], [
        'api_url' => '',
        'shop_uid' => '',
        'widget_secret' => '',
        'position' => 'right',
        'accent' => '',
    ]);
}

function lojal_rewards_configured(array $s): bool
{
    return $s['api_url'] !== '' && $s['shop_uid'] !== '';
}

/* ---- the customer token ------------------------------------------------------------ */

function lojal_rewards_b64url(string $data): string
{
    return rtrim(strtr(base64_encode($data), '+/', '-_'), '=');
}

/** A HS256 JWT Lojal's /widget/v1 accepts as `Authorization: Bearer`. */
function lojal_rewards_customer_token(string $secret, string $shop_uid, string $customer_id, int $now): string
{
    $flags = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE;
    $header = lojal_rewards_b64url(json_encode(['alg' => 'HS256', 'typ' => 'JWT'], $flags));
    $claims = lojal_rewards_b64url(json_encode([
        'aud' => $shop_uid,
        'sub' => $customer_id, // a string, as Lojal stores platform customer ids
        'iat' => $now,
        'exp' => $now + LOJAL_REWARDS_TOKEN_TTL,
    ], $flags));
    $signature = lojal_rewards_b64url(hash_hmac('sha256', $header . '.' . $claims, $secret, true));
    return $header . '.' . $claims . '.' . $signature;
}

/* ---- storefront -------------------------------------------------------------------- */

add_action('wp_enqueue_scripts', function () {
    $s = lojal_rewards_settings();
    if (!lojal_rewards_configured($s)) {
        return;
    }
    // `strategy => defer` (WordPress 6.3+): the widget never blocks rendering.
    wp_enqueue_script('lojal-rewards', $s['api_url'] . '/widget/static/lojal-widget.js', [],
        LOJAL_REWARDS_VERSION, ['strategy' => 'defer', 'in_footer' => true]);
});

// WordPress before 6.3 (Debian 12 ships 6.1) reads that array as just "in footer" and ignores
// `strategy`: add `defer` to our tag there. 6.3+ prints it itself.
if (version_compare($GLOBALS['wp_version'], '6.3', '<')) {
    add_filter('script_loader_tag', function ($tag, $handle) {
        return $handle === 'lojal-rewards' ? str_replace(' src=', ' defer src=', $tag) : $tag;
    }, 10, 2);
}

add_action('wp_footer', function () {
    $s = lojal_rewards_settings();
    if (!lojal_rewards_configured($s)) {
        return;
    }
    $attributes = [
        'api' => $s['api_url'] . '/widget/v1',
        'shop' => $s['shop_uid'],
        'locale' => strtolower(substr(determine_locale(), 0, 2)),
        'position' => $s['position'],
    ];
    // Logged out (or no secret yet): no token, the widget shows the guest view.
    if (is_user_logged_in() && $s['widget_secret'] !== '') {
        $attributes['token'] = lojal_rewards_customer_token(
            $s['widget_secret'], $s['shop_uid'], (string) get_current_user_id(), time());
    }
    if ($s['accent'] !== '') {
        $attributes['style'] = '--lojal-accent:' . $s['accent'];
    }
    $html = '<lojal-rewards';
    foreach ($attributes as $name => $value) {
        $html .= ' ' . $name . '="' . esc_attr($value) . '"';
    }
    echo $html . "></lojal-rewards>\n";
});

/* ---- referrals: ?ref=<code> -> cookie -> order meta lojal_ref ---------------------- */

// Lojal's /r/<code> link lands on the store with ?ref=<code>. The code is kept in a first-party
// cookie for 30 days and written into the order meta `lojal_ref` at checkout, which is what the
// order webhook attributes the referral by. Same pattern as Lojal's order parser.
const LOJAL_REWARDS_REF = 'lojal_ref';
const LOJAL_REWARDS_REF_PATTERN = '/^[A-Za-z0-9]{4,32}$/';
const LOJAL_REWARDS_REF_TTL = 30 * 24 * 3600;

/** The code if $value is one, else null. */
function lojal_rewards_ref_code($value): ?string
{
    $value = is_string($value) ? trim($value) : '';
    return preg_match(LOJAL_REWARDS_REF_PATTERN, $value) === 1 ? $value : null;
}

// template_redirect: storefront page requests only, before any output.
add_action('template_redirect', function () {
    $code = lojal_rewards_ref_code(wp_unslash($_GET['ref'] ?? ''));
    if ($code === null || headers_sent()) {
        return;
    }
    setcookie(LOJAL_REWARDS_REF, $code, [
        'expires' => time() + LOJAL_REWARDS_REF_TTL,
        'path' => '/',
        'domain' => COOKIE_DOMAIN ?: '',
        'secure' => is_ssl(),
        'httponly' => true,
        'samesite' => 'Lax',
    ]);
    $_COOKIE[LOJAL_REWARDS_REF] = $code; // a checkout later in this same request sees it too
});

/** Writes the remembered code into the order's meta (saved by WooCommerce with the order). */
function lojal_rewards_tag_order($order): void
{
    $code = lojal_rewards_ref_code(wp_unslash($_COOKIE[LOJAL_REWARDS_REF] ?? ''));
    if ($code !== null && $order instanceof WC_Order && $order->get_meta(LOJAL_REWARDS_REF) === '') {
        $order->update_meta_data(LOJAL_REWARDS_REF, $code);
    }
}

// Classic checkout: ($order, $data), before the order is first saved.
add_action('woocommerce_checkout_create_order', function ($order, $data) {
    lojal_rewards_tag_order($order);
}, 10, 2);

// Checkout block (Store API): ($order, $request); WooCommerce saves the order right after.
add_action('woocommerce_store_api_checkout_update_order_from_request', function ($order, $request) {
    lojal_rewards_tag_order($order);
}, 10, 2);

/* ---- Settings > Lojal Rewards ------------------------------------------------------- */

add_action('admin_init', function () {
    register_setting('lojal_rewards', LOJAL_REWARDS_OPTION, [
        'type' => 'array',
        'sanitize_callback' => 'lojal_rewards_sanitize',
        'default' => [],
    ]);
});

add_action('admin_menu', function () {
    add_options_page(__('Lojal Rewards', 'lojal-rewards'), __('Lojal Rewards', 'lojal-rewards'),
        'manage_options', 'lojal-rewards', 'lojal_rewards_settings_page');
});

function lojal_rewards_sanitize($input): array
{
    $input = is_array($input) ? $input : [];
    $old = lojal_rewards_settings();
    $secret = trim((string) ($input['widget_secret'] ?? ''));
    return [
        'api_url' => untrailingslashit(esc_url_raw(trim((string) ($input['api_url'] ?? '')), ['https', 'http'])),
        'shop_uid' => sanitize_text_field((string) ($input['shop_uid'] ?? '')),
        // The secret is never printed back into the form: an empty field keeps the saved one.
        'widget_secret' => $secret !== '' ? $secret : $old['widget_secret'],
        'position' => ($input['position'] ?? '') === 'left' ? 'left' : 'right',
        'accent' => (string) sanitize_hex_color((string) ($input['accent'] ?? '')),
    ];
}

/** One row of the settings table; $control is already-escaped HTML. */
function lojal_rewards_row(string $id, string $label, string $control, string $help = ''): void
{
    echo '<tr><th scope="row"><label for="' . esc_attr($id) . '">' . esc_html($label) . '</label></th><td>' . $control;
    if ($help !== '') {
        echo '<p class="description">' . esc_html($help) . '</p>';
    }
    echo "</td></tr>\n";
}

function lojal_rewards_input(string $id, string $key, string $value, string $attributes): string
{
    return '<input id="' . esc_attr($id) . '" name="' . esc_attr(LOJAL_REWARDS_OPTION . '[' . $key . ']') . '" value="'
        . esc_attr($value) . '" ' . $attributes . '>';
}

function lojal_rewards_settings_page(): void
{
    if (!current_user_can('manage_options')) {
        return;
    }
    $s = lojal_rewards_settings();
    $saved = $s['widget_secret'] !== '' ? esc_attr__('saved; type to replace', 'lojal-rewards') : '';
    $position = '<select id="lojal-position" name="' . esc_attr(LOJAL_REWARDS_OPTION . '[position]') . '">';
    foreach (['right' => __('Bottom right', 'lojal-rewards'), 'left' => __('Bottom left', 'lojal-rewards')] as $value => $label) {
        $position .= '<option value="' . esc_attr($value) . '"' . selected($s['position'], $value, false) . '>'
            . esc_html($label) . '</option>';
    }
    $position .= '</select>';
    echo '<div class="wrap"><h1>' . esc_html__('Lojal Rewards', 'lojal-rewards') . '</h1><form method="post" action="options.php">';
    settings_fields('lojal_rewards');
    echo '<table class="form-table" role="presentation">';
    lojal_rewards_row('lojal-api-url', __('API URL', 'lojal-rewards'),
        lojal_rewards_input('lojal-api-url', 'api_url', $s['api_url'],
            'class="regular-text" type="url" required placeholder="https://loyalty.example.com"'),
        __('The address of your Lojal server (its APP_URL).', 'lojal-rewards'));
    lojal_rewards_row('lojal-shop', __('Shop id', 'lojal-rewards'),
        lojal_rewards_input('lojal-shop', 'shop_uid', $s['shop_uid'], 'class="regular-text" type="text" required'));
    // The secret is never printed back: the field starts empty and an empty submit keeps it.
    lojal_rewards_row('lojal-secret', __('Widget secret', 'lojal-rewards'),
        lojal_rewards_input('lojal-secret', 'widget_secret', '',
            'class="regular-text" type="password" autocomplete="new-password" placeholder="' . $saved . '"'),
        __('Signs who the logged-in customer is. Keep it secret.', 'lojal-rewards'));
    lojal_rewards_row('lojal-position', __('Launcher position', 'lojal-rewards'), $position);
    lojal_rewards_row('lojal-accent', __('Accent colour', 'lojal-rewards'),
        lojal_rewards_input('lojal-accent', 'accent', $s['accent'],
            'type="text" pattern="#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?" placeholder="#2d6cdf"'),
        __('Empty: the brand colour set in Lojal.', 'lojal-rewards'));
    echo '</table>';
    submit_button();
    echo '</form></div>';
}
