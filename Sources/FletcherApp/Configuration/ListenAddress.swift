/// Where to listen, from `BASE_URL` (`host:port`, an `http://` prefix allowed).
public struct ListenAddress: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(baseURL: String) throws {
        var text = Substring(baseURL)
        if text.hasPrefix("http://") { text = text.dropFirst("http://".count) }
        if text.hasSuffix("/") { text = text.dropLast() }
        guard !text.hasPrefix("https://") else {
            throw ConfigurationError("BASE_URL", "Fletcher serves plain HTTP; put TLS in front of it and use host:port")
        }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(after: close)...].dropFirst()
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            throw ConfigurationError("BASE_URL", "expected host:port, such as 127.0.0.1:3000, got '\(baseURL)'")
        }
        guard !host.isEmpty, !host.contains("/") else {
            throw ConfigurationError("BASE_URL", "expected host:port, such as 127.0.0.1:3000, got '\(baseURL)'")
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw ConfigurationError("BASE_URL", "'\(portText)' is not a port number (0–65535)")
        }
        self.init(host: String(host), port: port)
    }
}
