// Swagger UI on the service's own document. A file, not an inline script: the page's
// Content-Security-Policy allows scripts from the service only.
SwaggerUIBundle({
  // Relative to the page, so the document is found behind a path prefix too.
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  // The default sends the document to a public validator and shows its badge: nothing leaves.
  validatorUrl: null,
});
