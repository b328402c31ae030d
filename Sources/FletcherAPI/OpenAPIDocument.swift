import Foundation

/// The OpenAPI document this API is generated from, as served by `GET /spec`.
public enum OpenAPIDocument {
    /// The YAML text of `openapi.yaml`, read from the bundled resource.
    public static let yaml: String = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else { preconditionFailure("openapi.yaml is missing from the FletcherAPI bundle") }
        return text
    }()
}
