// `ambassador demo` only: the demo opens in an ordinary browser tab, where App Bridge would send
// the browser to the Shopify admin's login (it does when loaded at top level). Load it, still
// synchronously and first, only when the page is framed, as inside the Shopify admin.
if (window.top !== window.self) {
  document.write('<script src="https://cdn.shopify.com/shopifycloud/app-bridge.js"><\/script>');
}
