import FletcherDispatch
import FletcherDomain
import FletcherStore
import Foundation
import Testing

@Suite("Webhook endpoints")
struct WebhookEndpointTests {
    /// Standard Webhooks' form of the 32 bytes 0, 1, …, 31.
    static let secret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    static let datasetA = UUID(uuidString: "7C9E6679-7425-40DE-944B-E07FC1F90AE7")!
    static let datasetB = UUID(uuidString: "11111111-2222-4333-8444-555555555555")!

    func parse(_ json: String) throws(WebhookConfigurationError) -> [WebhookEndpoint] {
        try WebhookEndpoint.parseList(json)
    }

    func expectError(_ message: String, _ json: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let endpoints = try parse(json)
            Issue.record("expected \(message), got \(endpoints)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.message == message, sourceLocation: sourceLocation)
        }
    }

    @Test func everyKeyIsRead() throws {
        let endpoints = try parse(
            #"""
            [{"url": "https://hooks.example/fletcher", "secret": "\#(Self.secret)", "events": ["data_product.failed", "dataset.*"],
              "datasets": ["7c9e6679-7425-40de-944b-e07fc1f90ae7", "11111111-2222-4333-8444-555555555555"], "format": "cloudevents"},
             {"url": "http://slack.example/services/T/B/x", "events": ["*"], "format": "slack", "max_in_flight": 1},
             {"url": "https://hooks.example/fletcher", "secret": "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGA", "events": ["trigger.undeliverable"]}]
            """#)
        #expect(endpoints.count == 3)
        #expect(endpoints[0].url == URL(string: "https://hooks.example/fletcher")!)
        #expect(endpoints[0].secret == Array(0..<32))
        #expect(endpoints[0].events == [.dataProductFailed, .datasetSucceeded, .datasetLate, .datasetPaused, .datasetUnpaused])
        #expect(endpoints[0].datasets == [Self.datasetA, Self.datasetB])
        #expect(endpoints[0].format == .cloudevents)
        #expect(endpoints[1].secret == nil && endpoints[1].datasets == nil && endpoints[1].format == .slack)
        #expect(endpoints[0].maxInFlight == nil && endpoints[1].maxInFlight == 1)
        // `*` is every type but the run events, which OpenLineage's recording adds to the feed.
        #expect(endpoints[1].events == Set(PlanEventType.allCases).subtracting(PlanEventType.runEvents))
        // The format defaults to standard; unpadded base64 is read too.
        #expect(endpoints[2].format == .standard && endpoints[2].secret == Array(0..<25))
        #expect(try parse("[]").isEmpty)
    }

    /// The key of an endpoint's queued deliveries: the first 16 hex digits of SHA-256("format url")
    /// (reference values from Python's hashlib), the same whatever the secret, events or datasets.
    @Test func theIdIsTheURLAndFormatsDigest() throws {
        let url = URL(string: "https://hooks.example/fletcher")!
        let standard = WebhookEndpoint(url: url, secret: Array(0..<32), events: [.dataProductFailed])
        #expect(standard.id == "4b139ca3e80fddc6")
        #expect(WebhookEndpoint(url: url, events: Set(PlanEventType.allCases), datasets: [Self.datasetA]).id == "4b139ca3e80fddc6")
        #expect(WebhookEndpoint(url: url, events: [.dataProductFailed], format: .slack).id == "a6dea3d1ac542582")
        #expect(!standard.description.contains("AAEC") && standard.description.contains("4b139ca3e80fddc6"))
    }

    @Test func anEndpointTakesItsTypesOfItsDatasetsAndPlatformEventsOnlyWithoutADatasetFilter() {
        let url = URL(string: "https://hooks.example")!
        let time = Date(timeIntervalSince1970: 0)
        let failedInA = PlanEvent(type: .dataProductFailed, time: time, datasetId: Self.datasetA, sequence: 1, dataProductId: UUID())
        let failedInB = PlanEvent(type: .dataProductFailed, time: time, datasetId: Self.datasetB, sequence: 1, dataProductId: UUID())
        let pausedA = PlanEvent(type: .datasetPaused, time: time, datasetId: Self.datasetA, sequence: 2)
        let circuit = PlanEvent(type: .computeCircuitOpened, time: time, datasetId: nil, sequence: nil, data: ["compute": .string("cams")])

        let everything = WebhookEndpoint(url: url, events: Set(PlanEventType.allCases))
        #expect([failedInA, failedInB, pausedA, circuit].allSatisfy { everything.subscription.matches(type: $0.type, datasetId: $0.datasetId) })

        let failuresOfA = WebhookEndpoint(url: url, events: [.dataProductFailed, .computeCircuitOpened], datasets: [Self.datasetA])
        #expect(failuresOfA.subscription.matches(type: failedInA.type, datasetId: failedInA.datasetId))
        #expect(!failuresOfA.subscription.matches(type: failedInB.type, datasetId: failedInB.datasetId))
        #expect(!failuresOfA.subscription.matches(type: pausedA.type, datasetId: pausedA.datasetId))
        #expect(!failuresOfA.subscription.matches(type: circuit.type, datasetId: circuit.datasetId))

        let circuits = WebhookEndpoint(url: url, events: [.computeCircuitOpened])
        #expect(circuits.subscription.matches(type: circuit.type, datasetId: circuit.datasetId))
        #expect(!circuits.subscription.matches(type: failedInA.type, datasetId: failedInA.datasetId))
    }

    @Test func badListsNameTheEntryTheKeyAndTheProblem() {
        let shape = #"expected a JSON list of {"url", "secret"?, "events", "datasets"?, "format"?, "max_in_flight"?} objects"#
        expectError(shape, #"{"url": "https://x"}"#)
        expectError(shape + "; invalid JSON at byte 1: a value was expected", "[")
        expectError("entry 0: not an object", #"["https://x"]"#)
        let types = PlanEventType.allCases.map(\.rawValue).joined(separator: ", ")
        let fine = #""events": ["*"], "format": "slack""#
        let cases: [(String, String)] = [
            (#"entry 1: unknown key "event" (keys are url, secret, events, datasets, format, max_in_flight)"#,
             #"[{"url": "https://x", \#(fine)}, {"url": "https://y", "event": ["*"], "format": "slack"}]"#),
            (#"entry 0: "url" is missing or not a string"#, #"[{"events": ["*"], "format": "slack"}]"#),
            (#"entry 0: "url" is missing or not a string"#, #"[{"url": 5, \#(fine)}]"#),
            (#"entry 0: "url" must be an http(s) URL, got 'ftp://x'"#, #"[{"url": "ftp://x", \#(fine)}]"#),
            (#"entry 0: "url" must be an http(s) URL, got '/hook'"#, #"[{"url": "/hook", \#(fine)}]"#),
            (#"entry 0: "url" must be an http(s) URL, got 'http://'"#, #"[{"url": "http://", \#(fine)}]"#),
            (#"entry 0: "format" must be one of standard, slack, cloudevents, got 'teams'"#,
             #"[{"url": "https://x", "events": ["*"], "format": "teams"}]"#),
            (#"entry 0: "format" must be one of standard, slack, cloudevents"#, #"[{"url": "https://x", "events": ["*"], "format": 1}]"#),
            (#"entry 0: "secret" is required for the standard format (whsec_ and base64 of 24 to 64 random bytes)"#,
             #"[{"url": "https://x", "events": ["*"]}]"#),
            (#"entry 0: "secret" must start with "whsec_" (then base64)"#,
             #"[{"url": "https://x", "events": ["*"], "secret": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"}]"#),
            (#"entry 0: "secret" must be "whsec_" and base64"#, #"[{"url": "https://x", "events": ["*"], "secret": "whsec_not base64!"}]"#),
            (#"entry 0: "secret" must hold 24 to 64 bytes; it holds 3"#, #"[{"url": "https://x", "events": ["*"], "secret": "whsec_AAEC"}]"#),
            (#"entry 0: "secret" must hold 24 to 64 bytes; it holds 0"#, #"[{"url": "https://x", "events": ["*"], "secret": "whsec_"}]"#),
            (#"entry 0: "secret" must be a string whsec_…"#, #"[{"url": "https://x", "events": ["*"], "format": "slack", "secret": 1}]"#),
            (#"entry 0: "events" must be a non-empty list of event types or patterns such as "data_product.*""#,
             #"[{"url": "https://x", "format": "slack"}]"#),
            (#"entry 0: "events" must be a non-empty list of event types or patterns such as "data_product.*""#,
             #"[{"url": "https://x", "events": [], "format": "slack"}]"#),
            (#"entry 0: "events" must be a non-empty list of event types or patterns such as "data_product.*""#,
             #"[{"url": "https://x", "events": "*", "format": "slack"}]"#),
            (#"entry 0: "events" must hold strings"#, #"[{"url": "https://x", "events": [1], "format": "slack"}]"#),
            (#"entry 0: "events": 'data_product.exploded' names no event type (types are \#(types); a prefix such as "dataset.*", or "*", names several)"#,
             #"[{"url": "https://x", "events": ["data_product.failed", "data_product.exploded"], "format": "slack"}]"#),
            (#"entry 0: "events": 'job.*' names no event type (types are \#(types); a prefix such as "dataset.*", or "*", names several)"#,
             #"[{"url": "https://x", "events": ["job.*"], "format": "slack"}]"#),
            (#"entry 0: "datasets" is empty; leave it out for every dataset"#, #"[{"url": "https://x", \#(fine), "datasets": []}]"#),
            (#"entry 0: "datasets" must hold dataset ids (UUIDs)"#, #"[{"url": "https://x", \#(fine), "datasets": ["nightly"]}]"#),
            (#"entry 0: "datasets" must be a list of dataset ids"#,
             #"[{"url": "https://x", \#(fine), "datasets": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}]"#),
            (#"entry 0: "max_in_flight" must be a whole number from 1 to 1000"#, #"[{"url": "https://x", \#(fine), "max_in_flight": 0}]"#),
            (#"entry 0: "max_in_flight" must be a whole number from 1 to 1000"#, #"[{"url": "https://x", \#(fine), "max_in_flight": 2.5}]"#),
            (#"entry 0: "max_in_flight" must be a whole number from 1 to 1000"#, #"[{"url": "https://x", \#(fine), "max_in_flight": "8"}]"#),
            ("entry 2 has the url and format of entry 0; give each endpoint one entry",
             #"[{"url": "https://x", \#(fine)}, {"url": "https://x", "events": ["*"], "format": "cloudevents"}, {"url": "https://x", "events": ["dataset.*"], "format": "slack"}]"#),
        ]
        for (message, json) in cases { expectError(message, json) }
    }

    /// A secret never appears in an error message.
    @Test func errorsDoNotQuoteTheSecret() {
        do {
            _ = try parse(#"[{"url": "https://x", "events": ["*"], "secret": "whsec_c2VjcmV0IHNlY3JldA=="}]"#)
            Issue.record("expected an error")
        } catch {
            #expect(!error.message.contains("c2VjcmV0"))
        }
    }
}
