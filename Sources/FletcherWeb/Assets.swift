import FletcherStore

/// The stylesheet, script and icon of the pages, embedded in the executable (`PackageResources`)
/// and served under `/assets/` with a content fingerprint, so browsers may cache them for good.
public struct Assets: Sendable {
    struct File: Sendable {
        var bytes: [UInt8]
        var contentType: String
        var fingerprint: String
    }

    let files: [String: File]

    public init() {
        var files: [String: File] = [:]
        for (name, bytes, contentType) in [
            ("fletcher.css", PackageResources.fletcher_css, "text/css; charset=utf-8"),
            ("fletcher.js", PackageResources.fletcher_js, "text/javascript; charset=utf-8"),
            ("favicon.svg", PackageResources.favicon_svg, "image/svg+xml"),
        ] {
            files[name] = File(bytes: bytes, contentType: contentType, fingerprint: fingerprint(bytes))
        }
        self.files = files
    }

    /// The versioned URL of an asset.
    func url(_ name: String) -> String {
        "/assets/\(name)?v=\(files[name]?.fingerprint ?? "0")"
    }
}
