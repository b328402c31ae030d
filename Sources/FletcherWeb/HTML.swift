/// HTML text. Interpolating a `String` escapes it; interpolating `HTML` inserts it as it is — so
/// user data (names, versions, extra, links) can only ever land in a page as text.
public struct HTML: Sendable, CustomStringConvertible, ExpressibleByStringInterpolation {
    public private(set) var text: String

    public init(raw text: String) { self.text = text }
    public init(stringLiteral value: String) { text = value }
    public init(stringInterpolation: StringInterpolation) { text = stringInterpolation.text }

    public var description: String { text }

    public static let empty = HTML(raw: "")

    public struct StringInterpolation: StringInterpolationProtocol {
        var text = ""

        public init(literalCapacity: Int, interpolationCount: Int) { text.reserveCapacity(literalCapacity * 2) }
        public mutating func appendLiteral(_ literal: String) { text += literal }
        public mutating func appendInterpolation(_ value: String) { text += HTML.escape(value) }
        public mutating func appendInterpolation(_ value: some BinaryInteger) { text += String(value) }
        public mutating func appendInterpolation(_ html: HTML) { text += html.text }
        public mutating func appendInterpolation(_ parts: [HTML]) { for part in parts { text += part.text } }
        public mutating func appendInterpolation(_ html: HTML?) { text += html?.text ?? "" }
    }

    /// Escapes text for element content and quoted attribute values. Text with nothing to escape
    /// (most of it) is returned as it is; the rest is rewritten byte by byte.
    public static func escape(_ text: String) -> String {
        guard text.utf8.contains(where: needsEscape) else { return text }
        var escaped: [UInt8] = []
        escaped.reserveCapacity(text.utf8.count + 16)
        escape(text.utf8, into: &escaped)
        return String(decoding: escaped, as: UTF8.self)
    }

    /// Appends UTF-8 text to `out`, escaped.
    static func escape(_ text: some Sequence<UInt8>, into out: inout [UInt8]) {
        for byte in text {
            switch byte {
            case UInt8(ascii: "&"): out.append(contentsOf: "&amp;".utf8)
            case UInt8(ascii: "<"): out.append(contentsOf: "&lt;".utf8)
            case UInt8(ascii: ">"): out.append(contentsOf: "&gt;".utf8)
            case UInt8(ascii: "\""): out.append(contentsOf: "&quot;".utf8)
            case UInt8(ascii: "'"): out.append(contentsOf: "&#39;".utf8)
            default: out.append(byte)
            }
        }
    }

    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "&") || byte == UInt8(ascii: "<") || byte == UInt8(ascii: ">") || byte == UInt8(ascii: "\"")
            || byte == UInt8(ascii: "'")
    }

    /// `url` as a hyperlink when it is http(s), otherwise as plain text: a stored `javascript:` link stays inert.
    public static func link(_ url: String?, label: String? = nil) -> HTML {
        guard let url, !url.isEmpty else { return "" }
        let lowered = url.lowercased()
        guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://") else { return "\(label ?? url)" }
        return "<a href=\"\(url)\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">\(label ?? url)</a>"
    }

    /// Joins parts with a separator.
    public static func join(_ parts: [HTML], separator: HTML = "") -> HTML {
        HTML(raw: parts.map(\.text).joined(separator: separator.text))
    }
}

/// A query string from name/value pairs, percent-encoded.
func query(_ items: [(String, String?)]) -> String {
    let allowed = CharacterSet.urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+?#"))
    let parts = items.compactMap { name, value -> String? in
        guard let value else { return nil }
        return name + "=" + (value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")
    }
    return parts.isEmpty ? "" : "?" + parts.joined(separator: "&")
}

import Foundation
