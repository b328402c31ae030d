import FletcherDispatch
import Foundation
import Testing

@Suite("OpenLineage settings")
struct OpenLineageSettingsTests {
    func expectError(
        _ variable: String, _ problem: String, url: String?, namespace: String? = nil, apiKey: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            let settings = try OpenLineageSettings.parse(url: url, namespace: namespace, apiKey: apiKey)
            Issue.record("expected \(variable): \(problem), got \(String(describing: settings))", sourceLocation: sourceLocation)
        } catch {
            #expect(error == OpenLineageConfigurationError(variable, problem), sourceLocation: sourceLocation)
        }
    }

    @Test func unsetOrEmptyIsNoLineage() throws {
        #expect(try OpenLineageSettings.parse(url: nil, namespace: nil, apiKey: nil) == nil)
        #expect(try OpenLineageSettings.parse(url: "", namespace: "", apiKey: "") == nil)
    }

    @Test func everyVariableIsRead() throws {
        let settings = try #require(try OpenLineageSettings.parse(url: "https://marquez.example:5000/", namespace: "team-a", apiKey: "k3y"))
        #expect(settings.url == URL(string: "https://marquez.example:5000/")!)
        #expect(settings.lineageURL == URL(string: "https://marquez.example:5000/api/v1/lineage")!)
        #expect(settings.namespace == "team-a")
        #expect(settings.headers == ["content-type": "application/json", "authorization": "Bearer k3y"])

        let plain = try #require(try OpenLineageSettings.parse(url: "http://lineage.example/base", namespace: nil, apiKey: nil))
        #expect(plain.namespace == "fletcher")
        #expect(plain.lineageURL == URL(string: "http://lineage.example/base/api/v1/lineage")!)
        #expect(plain.headers == ["content-type": "application/json"])
    }

    @Test func badValuesNameTheirVariable() {
        let url = "expected an http(s) URL such as http://marquez.example:5000 (events go to {url}/api/v1/lineage), got"
        expectError("OPENLINEAGE_URL", "\(url) 'marquez:5000'", url: "marquez:5000")
        expectError("OPENLINEAGE_URL", "\(url) 'ftp://marquez.example'", url: "ftp://marquez.example")
        expectError("OPENLINEAGE_URL", "\(url) 'http://'", url: "http://")
        expectError("OPENLINEAGE_URL", "\(url) 'http://m.example/?x=1'", url: "http://m.example/?x=1")
        expectError(
            "OPENLINEAGE_URL", "OPENLINEAGE_NAMESPACE is set but OPENLINEAGE_URL is not; set it to send lineage", url: nil, namespace: "team-a")
        expectError("OPENLINEAGE_URL", "OPENLINEAGE_API_KEY is set but OPENLINEAGE_URL is not; set it to send lineage", url: "", apiKey: "k")
        expectError(
            "OPENLINEAGE_NAMESPACE", "expected a name without spaces or control characters, got 'team a'", url: "http://m.example",
            namespace: "team a")
        // The key is never quoted.
        expectError(
            "OPENLINEAGE_API_KEY", "expected a key without spaces or control characters", url: "http://m.example", apiKey: "k\r\nX-Evil: 1")
    }
}
