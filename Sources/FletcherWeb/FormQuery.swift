import Foundation
import Hummingbird

/// A page request's query string, or a form's body, decoded as browsers encode forms (`+` is a
/// space). The first value of a name counts.
struct FormQuery {
    private var values: [String: String] = [:]

    init(_ request: Request) {
        self.init(encoded: request.uri.query ?? "")
    }

    init(encoded text: String) {
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            // Plus before percent-decoding, so that %2B stays a literal plus.
            func decode(_ text: Substring) -> String? {
                text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
            }
            guard let name = decode(parts[0]), values[name] == nil else { continue }
            values[name] = parts.count > 1 ? decode(parts[1]) ?? "" : ""
        }
    }

    /// A posted form's fields (`application/x-www-form-urlencoded`, up to `limit` bytes).
    static func body(of request: Request, limit: Int = 64 << 10) async throws -> FormQuery {
        let buffer = try await request.body.collect(upTo: limit)
        return FormQuery(encoded: String(buffer: buffer))
    }

    subscript(_ name: String) -> String? { values[name] }

    /// A non-negative whole number, or nil when absent or anything else.
    func count(_ name: String) -> Int? {
        values[name].flatMap { Int($0) }.flatMap { $0 >= 0 ? $0 : nil }
    }
}
