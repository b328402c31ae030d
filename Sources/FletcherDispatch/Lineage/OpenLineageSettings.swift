public import Foundation

/// Where OpenLineage RunEvents go (`OPENLINEAGE_URL`, `OPENLINEAGE_NAMESPACE`,
/// `OPENLINEAGE_API_KEY`).
public struct OpenLineageSettings: Sendable, Hashable {
    /// The OpenLineage server (`OPENLINEAGE_URL`); events are posted to `lineageURL`.
    public var url: URL
    /// The namespace of Fletcher's jobs and datasets (`OPENLINEAGE_NAMESPACE`).
    public var namespace: String
    /// Sent as `Authorization: Bearer <key>` (`OPENLINEAGE_API_KEY`); nil: no header.
    public var apiKey: String?

    public static let defaultNamespace = "fletcher"

    public init(url: URL, namespace: String = defaultNamespace, apiKey: String? = nil) {
        self.url = url
        self.namespace = namespace
        self.apiKey = apiKey
    }

    /// `{url}/api/v1/lineage`, where RunEvents are posted.
    public var lineageURL: URL {
        let base = url.absoluteString.hasSuffix("/") ? String(url.absoluteString.dropLast()) : url.absoluteString
        return URL(string: base + "/api/v1/lineage") ?? url
    }

    /// The request headers of every RunEvent (names in lower case).
    public var headers: [String: String] {
        var headers = ["content-type": "application/json"]
        if let apiKey { headers["authorization"] = "Bearer \(apiKey)" }
        return headers
    }

    /// The settings the three variables give; nil when none is set (a variable set empty counts
    /// as unset). `OPENLINEAGE_URL` is an http(s) URL; the namespace and the key are text without
    /// spaces or control characters (the key goes into a header).
    public static func parse(
        url: String?, namespace: String?, apiKey: String?
    ) throws(OpenLineageConfigurationError) -> OpenLineageSettings? {
        let url = url.flatMap { $0.isEmpty ? nil : $0 }
        let namespace = namespace.flatMap { $0.isEmpty ? nil : $0 }
        let apiKey = apiKey.flatMap { $0.isEmpty ? nil : $0 }
        guard let url else {
            if namespace != nil || apiKey != nil {
                let set = namespace != nil ? "OPENLINEAGE_NAMESPACE" : "OPENLINEAGE_API_KEY"
                throw OpenLineageConfigurationError("OPENLINEAGE_URL", "\(set) is set but OPENLINEAGE_URL is not; set it to send lineage")
            }
            return nil
        }
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host?.isEmpty == false,
            parsed.query == nil, parsed.fragment == nil
        else {
            throw OpenLineageConfigurationError(
                "OPENLINEAGE_URL", "expected an http(s) URL such as http://marquez.example:5000 (events go to {url}/api/v1/lineage), got '\(url)'")
        }
        if let namespace, !isPlainText(namespace) {
            throw OpenLineageConfigurationError("OPENLINEAGE_NAMESPACE", "expected a name without spaces or control characters, got '\(namespace)'")
        }
        if let apiKey, !isPlainText(apiKey) {
            // The key itself is not quoted.
            throw OpenLineageConfigurationError("OPENLINEAGE_API_KEY", "expected a key without spaces or control characters")
        }
        return OpenLineageSettings(url: parsed, namespace: namespace ?? defaultNamespace, apiKey: apiKey)
    }

    private static func isPlainText(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { !$0.properties.isWhitespace && $0.properties.generalCategory != .control }
    }
}

/// Which `OPENLINEAGE_*` variable cannot be used, and why.
public struct OpenLineageConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var variable: String
    public var problem: String

    public init(_ variable: String, _ problem: String) {
        self.variable = variable
        self.problem = problem
    }

    public var description: String { "\(variable): \(problem)" }
}
