// Redoc on the service's own document. A file, not an inline script: the page's
// Content-Security-Policy allows scripts from the service only.
Redoc.init(
  // Relative to the page, so the document is found behind a path prefix too.
  new URL("openapi.json", document.baseURI).href,
  // Search runs in a Web Worker made from a blob: URL, which the policy does not allow; the
  // menu lists every operation of this small API anyway.
  { disableSearch: true },
  document.getElementById("redoc"),
);
