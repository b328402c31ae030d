/// The `/swagger` page: Swagger UI, loaded from a pinned CDN URL with integrity hashes, pointed at `/spec`.
/// It needs internet access; when the files cannot load, the page says where the raw document is.
enum SwaggerPage {
    /// swagger-ui-dist on npm; the hashes are of its files as jsdelivr serves them (checked against
    /// drf-spectacular-sidecar 2026.10.1 on PyPI, which packages those same files, validated).
    static let version = "5.33.1"
    static let scriptIntegrity = "sha384-ZPehFMQommnnuaZ4rpxgkgTT2DKFVp4hZC/7pLit+9Lek9T1YGSo23eHFbvNkXkw"
    static let styleIntegrity = "sha384-Ov4/wv3j2bmct8cDc5X4ngJZohVPzEmc6uDPH8WeljUxO5vtoykvMEfbu9Vh6RaW"

    static let html = """
        <!doctype html>
        <html lang="en">
        <head>
          <meta charset="utf-8">
          <meta name="viewport" content="width=device-width, initial-scale=1">
          <title>Fletcher API</title>
          <link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@\(version)/swagger-ui.css"
                integrity="\(styleIntegrity)" crossorigin="anonymous">
          <style>
            body { margin: 0; font-family: system-ui, sans-serif; }
            #fallback { max-width: 40rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }
          </style>
        </head>
        <body>
          <div id="swagger-ui"></div>
          <div id="fallback">
            <h1>Fletcher API</h1>
            <p>This page shows the API with Swagger UI, which it loads from cdn.jsdelivr.net.
            If you can read this, that did not work (no internet access, or a blocked CDN).</p>
            <p>The OpenAPI 3.1 document is at <a href="/spec">/spec</a>: open it in any OpenAPI tool.</p>
          </div>
          <script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@\(version)/swagger-ui-bundle.js"
                  integrity="\(scriptIntegrity)" crossorigin="anonymous"></script>
          <script src="/assets/swagger-init.js"></script>
        </body>
        </html>
        """
}

extension SwaggerPage {
    /// Started from a file rather than inline, so the page works under a Content-Security-Policy without 'unsafe-inline'.
    static let initScript = """
        if (window.SwaggerUIBundle) {
          document.getElementById("fallback").hidden = true;
          window.ui = SwaggerUIBundle({ url: "/spec", dom_id: "#swagger-ui", deepLinking: true });
        }

        """
}
