import FletcherAPI
import Foundation
import Testing

@Suite("Wire types")
struct WireTypesTests {
    struct Holder: Codable {
        var id: WireUUID
        var maybe: Nullable<WireUUID>?
    }

    @Test func uuidsAreReadInAnyCaseAndWrittenLowercase() throws {
        let text = #"{"id":"ABCDEF01-2345-6789-ABCD-EF0123456789","maybe":null}"#
        let holder = try JSONDecoder().decode(Holder.self, from: Data(text.utf8))
        let written = String(decoding: try JSONEncoder().encode(holder), as: UTF8.self)
        #expect(written.contains(#""abcdef01-2345-6789-abcd-ef0123456789""#))
    }

    @Test func anythingButAUUIDFailsToDecode() {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Holder.self, from: Data(#"{"id":"nope"}"#.utf8))
        }
    }

    @Test func nullableValuesAreWrittenAsNull() throws {
        let holder = Holder(id: WireUUID(UUID()), maybe: Nullable(nil))
        let written = String(decoding: try JSONEncoder().encode(holder), as: UTF8.self)
        #expect(written.contains(#""maybe":null"#))
    }

    @Test func theBundledDocumentIsTheOpenAPIDocument() {
        #expect(OpenAPIDocument.yaml.hasPrefix("openapi: 3.1.0"))
        #expect(OpenAPIDocument.yaml.contains("operationId: submitPlan"))
    }
}
