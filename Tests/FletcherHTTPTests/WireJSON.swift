import FletcherAPI
import FletcherDomain
@testable import FletcherHTTP
import Foundation
import OpenAPIRuntime

/// A plan as JSON through the generated types and `JSONEncoder`: what the OpenAPI runtime would
/// write for it, the reference `PlanJSON`'s output is compared with.
enum WireJSON {
    static func plan(_ plan: Plan, pretty: Bool = true) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys]
        let transcoder = RFC3339DateTranscoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(try transcoder.encode(date))
        }
        // Wire values always encode: they were built from domain values.
        return String(decoding: try! encoder.encode(Components.Schemas.Plan(plan)), as: UTF8.self)
    }
}
