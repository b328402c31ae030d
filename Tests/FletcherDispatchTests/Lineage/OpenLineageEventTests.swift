import FletcherDispatch
import FletcherDomain
import Foundation
import Testing

@Suite("OpenLineage events")
struct OpenLineageEventTests {
    static let triggerId = UUID(uuidString: "0F8FAD5B-D9CB-469F-A165-70867728950E")!
    static let datasetId = UUID(uuidString: "7C9E6679-7425-40DE-944B-E07FC1F90AE7")!
    static let productId = UUID(uuidString: "9A8B7C6D-1111-4222-8333-944455556666")!
    static let parentA = UUID(uuidString: "AAAAAAAA-1111-4222-8333-944455556666")!
    static let parentB = UUID(uuidString: "BBBBBBBB-1111-4222-8333-944455556666")!
    /// 2026-11-23T03:20:13.123456Z.
    static let time = Date(timeIntervalSince1970: Double(1_795_404_013_123_456) / 1_000_000)
    static let producer = "https://fletcher.example"

    func run(_ type: LineageRun.EventType, parents: [UUID] = [parentA, parentB], error: String? = nil) -> LineageRun {
        LineageRun(
            eventType: type, eventTime: Self.time, runId: Self.triggerId, datasetId: Self.datasetId, dataProductId: Self.productId,
            productName: "load \"orders\"", tryNumber: 2, parents: parents, errorMessage: error)
    }

    func text(_ run: LineageRun, namespace: String = "prod") -> String {
        String(decoding: OpenLineageEvent.json(for: run, namespace: namespace, producer: Self.producer), as: UTF8.self)
    }

    static let ds = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    static let job = "\(ds).9a8b7c6d-1111-4222-8333-944455556666"

    /// The whole event: the try as the run, the dataset as its parent, the product as the job with
    /// its name in a facet, the parents' outputs as inputs, its own as the output.
    @Test func aFailedTryIsARunEventWithItsErrorFacet() {
        let facet = #""_producer":"https://fletcher.example","_schemaURL":"#
        #expect(
            text(run(.fail, error: #"{"code":137}"#))
                == #"{"eventType":"FAIL","eventTime":"2026-11-23T03:20:13.123456Z","#
                + #""run":{"runId":"0f8fad5b-d9cb-469f-a165-70867728950e","facets":{"#
                + #""parent":{\#(facet)"https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet","#
                + #""run":{"runId":"\#(Self.ds)"},"job":{"namespace":"prod","name":"\#(Self.ds)"}},"#
                + #""fletcher_try":{\#(facet)"https://fletcher.example/openlineage/facets/1-0-0/TryRunFacet.json#/$defs/TryRunFacet","try":2},"#
                + #""errorMessage":{\#(facet)"https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet","#
                + #""message":"{\"code\":137}","programmingLanguage":"UNKNOWN"}}},"#
                + #""job":{"namespace":"prod","name":"\#(Self.job)","facets":{"#
                + #""jobType":{\#(facet)"https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet","#
                + #""processingType":"BATCH","integration":"FLETCHER","jobType":"DATA_PRODUCT"},"#
                + #""fletcher_dataProduct":{\#(facet)"https://fletcher.example/openlineage/facets/1-0-0/DataProductJobFacet.json#/$defs/DataProductJobFacet","#
                + #""name":"load \"orders\"","dataset_id":"\#(Self.ds)","data_product_id":"9a8b7c6d-1111-4222-8333-944455556666"}}},"#
                + #""inputs":[{"namespace":"prod","name":"\#(Self.ds).aaaaaaaa-1111-4222-8333-944455556666"},"#
                + #"{"namespace":"prod","name":"\#(Self.ds).bbbbbbbb-1111-4222-8333-944455556666"}],"#
                + #""outputs":[{"namespace":"prod","name":"\#(Self.job)"}],"#
                + #""producer":"https://fletcher.example","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}"#)
    }

    /// Only a FAIL carries the error facet; a product without parents has no inputs.
    @Test(arguments: LineageRun.EventType.allCases)
    func eachTransitionNamesItsTypeAndOnlyFailuresCarryTheError(type: LineageRun.EventType) throws {
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(text(run(type, parents: [], error: "boom")).utf8)) as? [String: Any])
        #expect(json["eventType"] as? String == type.rawValue)
        let runFacets = try #require((json["run"] as? [String: Any])?["facets"] as? [String: Any])
        #expect(Set(runFacets.keys) == (type == .fail ? ["parent", "fletcher_try", "errorMessage"] : ["parent", "fletcher_try"]))
        #expect((json["inputs"] as? [Any])?.isEmpty == true)
        #expect((json["outputs"] as? [[String: String]]) == [["namespace": "prod", "name": Self.job]])
    }

    @Test func aFailureWithoutAPassbackHasNoErrorFacet() throws {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text(run(.fail)).utf8)) as? [String: Any])
        let runFacets = try #require((json["run"] as? [String: Any])?["facets"] as? [String: Any])
        #expect(runFacets["errorMessage"] == nil)
    }

    @Test func theNamespaceNamesEveryJobAndDataset() {
        let event = text(run(.start), namespace: "team-a")
        #expect(!event.contains(#""namespace":"prod""#))
        #expect(event.components(separatedBy: #""namespace":"team-a""#).count - 1 == 5)
    }
}
