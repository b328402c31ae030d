public import HTTPTypes
import Foundation

/// An error answer in the RFC 9457 problem format (`application/problem+json`).
///
/// Every failure Fletcher reports over HTTP becomes one of these, in one place (`Problem+Mapping`).
public struct Problem: Error, Sendable, Equatable {
    public var status: HTTPResponse.Status
    /// A sentence naming the offending id or field.
    public var detail: String
    /// Extra response headers (`WWW-Authenticate`, `Retry-After`).
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ detail: String, headers: HTTPFields = [:]) {
        self.status = status
        self.detail = detail
        self.headers = headers
    }

    public var title: String { status.reasonPhrase }

    /// The JSON body: `type`, `title`, `status`, `detail`.
    public var body: [UInt8] {
        let object: [String: any Sendable] = [
            "type": "about:blank", "title": title, "status": status.code, "detail": detail,
        ]
        return Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
    }

    public static let contentType = "application/problem+json"

    public static func badRequest(_ detail: String) -> Problem { Problem(.badRequest, detail) }
    public static func notFound(_ detail: String) -> Problem { Problem(.notFound, detail) }
    public static func unauthorized(_ detail: String) -> Problem {
        Problem(.unauthorized, detail, headers: [.wwwAuthenticate: "Bearer"])
    }
    public static func forbidden(_ detail: String) -> Problem { Problem(.forbidden, detail) }
}
