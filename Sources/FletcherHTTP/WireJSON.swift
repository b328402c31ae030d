import FletcherAPI
public import FletcherDomain
import Foundation

/// A plan or data product as JSON text exactly as the API answers it (for pages that show it).
public enum WireJSON {
    public static func plan(_ plan: Plan, pretty: Bool = true) -> String {
        encode(Components.Schemas.Plan(plan), pretty: pretty)
    }

    public static func dataProduct(_ product: DataProduct, pretty: Bool = true) -> String {
        encode(Components.Schemas.DataProduct(product), pretty: pretty)
    }

    private static func encode(_ value: some Encodable, pretty: Bool) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys]
        let transcoder = RFC3339DateTranscoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(try transcoder.encode(date))
        }
        // Wire values always encode: they were built from domain values.
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }
}
