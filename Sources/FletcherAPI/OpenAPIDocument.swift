/// The OpenAPI document this API is generated from, as served by `GET /spec`.
public enum OpenAPIDocument {
    /// The YAML text of `openapi.yaml`, embedded in the executable (`PackageResources`).
    public static let yaml = String(decoding: PackageResources.openapi_yaml, as: UTF8.self)
}
