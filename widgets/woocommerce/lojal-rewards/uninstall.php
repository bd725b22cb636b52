<?php
/**
 * Runs when the plugin is deleted (not when it is deactivated): removes its settings, above all
 * the widget secret, which signs customer tokens and must not stay behind in wp_options.
 * On multisite the option is per site, so every site's copy goes.
 */

if (!defined('WP_UNINSTALL_PLUGIN')) {
    exit;
}

if (is_multisite()) {
    foreach (get_sites(['fields' => 'ids', 'number' => 0]) as $site_id) {
        switch_to_blog($site_id);
        delete_option('lojal_rewards');
        restore_current_blog();
    }
} else {
    delete_option('lojal_rewards');
}
