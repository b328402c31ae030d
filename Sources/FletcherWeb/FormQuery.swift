import Foundation
import Hummingbird

/// The query string of a page request, decoded as browsers encode forms (`+` is a space).
struct FormQuery {
    private var values: [String: String] = [:]

    init(_ request: Request) {
        for pair in (request.uri.query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            // Plus before percent-decoding, so that %2B stays a literal plus.
            func decode(_ text: Substring) -> String? {
                text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
            }
            guard let name = decode(parts[0]), values[name] == nil else { continue }
            values[name] = parts.count > 1 ? decode(parts[1]) ?? "" : ""
        }
    }

    subscript(_ name: String) -> String? { values[name] }

    /// A non-negative whole number, or nil when absent or anything else.
    func count(_ name: String) -> Int? {
        values[name].flatMap { Int($0) }.flatMap { $0 >= 0 ? $0 : nil }
    }
}
