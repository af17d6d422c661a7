//! The dashboard in a real headless Chromium: it asks for the token, keeps it for the tab,
//! shows the pages and the hit ratio, and each button does what the API does. Under `CI=true`
//! a missing Chromium fails the test; elsewhere it is skipped loudly.

use caje_testkit::browser::Browser;
use caje_testkit::get;
use serde_json::json;

use crate::support::{self, TOKEN};

/// Runs browser steps off the async threads (the node under test serves on them).
async fn step<T: Send + 'static>(
    mut browser: Browser,
    work: impl FnOnce(&mut Browser) -> T + Send + 'static,
) -> (Browser, T) {
    tokio::task::spawn_blocking(move || {
        let out = work(&mut browser);
        (browser, out)
    })
    .await
    .expect("browser step panicked")
}

/// Clicks an element found by a CSS selector.
fn click(browser: &mut Browser, selector: &str) {
    let clicked = browser.eval(&format!(
        "(() => {{ const e = document.querySelector({selector:?}); if (e) e.click(); return Boolean(e); }})()"
    ));
    assert_eq!(clicked, json!(true), "nothing matches {selector}");
}

fn status_is(text: &str) -> String {
    format!("document.getElementById('status').textContent === {text:?}")
}

const ROWS: &str = "document.querySelectorAll('#entries tbody tr').length";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let Some(browser) = Browser::launch() else {
        return;
    };
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "node = \"dash-node\"\n").await;
    support::install_policy(&node, "10-tags.wasm", "tag-by-path").await;
    support::fill(&node, &["/d/1", "/d/2", "/d/p/1", "/d/p/2", "/d/1"]).await;
    let dashboard = node.url("/_caje");

    // Without a token the page asks for one; a wrong token is refused and asked for again.
    let (browser, ()) = step(browser, move |b| {
        b.open(&dashboard);
        b.wait_until("the login form", "!document.getElementById('login').hidden");
        assert_eq!(b.eval("location.pathname"), json!("/_caje/"), "redirected to the page");
        b.eval("document.getElementById('login-reason').textContent = ''");
        b.eval("document.getElementById('token').value = 'wrong-token'");
        click(b, "#login-button");
        b.wait_until(
            "the refusal",
            "document.getElementById('login-reason').textContent.includes('authentication required')",
        );
        assert_eq!(b.eval("document.getElementById('admin').hidden"), json!(true));
        b.eval(&format!("document.getElementById('token').value = {TOKEN:?}"));
        click(b, "#login-button");
        b.wait_until("the page list", &format!("!document.getElementById('admin').hidden && {ROWS} === 4"));
        assert_eq!(b.eval("document.getElementById('node').textContent"), json!("dash-node"));
        let ratio = b.eval("document.getElementById('hit-ratio').textContent");
        assert!(ratio.as_str().unwrap().ends_with(" %"), "{ratio}");
        assert_eq!(b.eval("document.getElementById('manifest-state').textContent"), json!("ok"));
        b.wait_until(
            "the policy table",
            "document.querySelector('#policies tr[data-file=\"10-tags.wasm\"]')?.cells[1].textContent === 'active'",
        );
    })
    .await;

    // A row's purge button purges that URL.
    let (browser, ()) = step(browser, |b| {
        click(b, "#entries tbody tr[data-url$='/d/1'] button.purge-row");
        b.wait_until(
            "the purge",
            &format!("{} && {ROWS} === 3", status_is("purge done")),
        );
    })
    .await;
    assert_eq!(get(&node.url("/d/1")).await.x_cache(), "MISS");

    // The purge form: a soft prefix purge.
    let prefix = node.url("/d/p/");
    let (browser, ()) = step(browser, move |b| {
        b.eval("document.getElementById('purge-kind').value = 'prefix'");
        b.eval(&format!(
            "document.getElementById('purge-value').value = {prefix:?}"
        ));
        b.eval("document.getElementById('purge-soft').checked = true");
        click(b, "#purge-button");
        b.wait_until("the soft purge", &status_is("purge done"));
        let result = b.eval("document.getElementById('result').textContent");
        assert!(
            result.as_str().unwrap().contains("\"soft\": true"),
            "{result}"
        );
    })
    .await;
    assert_eq!(get(&node.url("/d/p/1")).await.x_cache(), "REVALIDATED");

    // Clear this node's files (after a confirmation), then populate them back from the manifest.
    let (browser, ()) = step(browser, |b| {
        click(b, "#clear-fs-button");
        b.wait_until("clear-fs", &status_is("clear-fs done"));
    })
    .await;
    assert!(node.cache_files().is_empty(), "{:?}", node.cache_files());
    let (browser, ()) = step(browser, |b| {
        click(b, "#populate-button");
        b.wait_until("populate", &status_is("populate done"));
        let result = b.eval("JSON.parse(document.getElementById('result').textContent).fetched");
        assert!(result.as_u64() >= Some(1), "{result}");
    })
    .await;
    assert_eq!(get(&node.url("/d/2")).await.x_cache(), "HIT");

    // Clear the manifest: the table then lists this node's files as missing from it.
    let (browser, ()) = step(browser, |b| {
        click(b, "#clear-db-button");
        b.wait_until("clear-db", &status_is("clear-db done"));
        b.wait_until(
            "disk-only rows",
            &format!("{ROWS} > 0 && [...document.querySelectorAll('#entries tbody tr')].every(r => r.cells[5].textContent === 'no')"),
        );
    })
    .await;
    assert!(
        node.node()
            .context
            .manifest
            .as_ref()
            .unwrap()
            .list(&Default::default())
            .await
            .unwrap()
            .rows
            .is_empty()
    );

    // The token survives a reload of the tab, and is gone once forgotten.
    let again = node.url("/_caje/");
    let (browser, ()) = step(browser, move |b| {
        b.navigate(&again);
        b.wait_until(
            "the page without a login",
            "!document.getElementById('admin').hidden",
        );
        click(b, "#forget-token");
        b.wait_until("the login form", "!document.getElementById('login').hidden");
        assert_eq!(b.eval("sessionStorage.length"), json!(0));
    })
    .await;
    assert_eq!(browser.dialogs.len(), 2, "{:?}", browser.dialogs);
    assert!(
        browser.errors.is_empty(),
        "the page logged errors: {:?}",
        browser.errors
    );
}
