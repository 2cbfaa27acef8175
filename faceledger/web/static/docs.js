/* /docs: start the bundled Swagger UI on faceledger's OpenAPI document (no inline script, so the
   page runs under the same strict CSP as the rest). validatorUrl null: nothing is fetched from
   outside. */
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    docExpansion: "list",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
})();
