import FletcherDomain
import FletcherStore
import FletcherTestSupport
import Foundation
import HTTPTypes
import Testing

@Suite("Metrics and request ids")
struct MetricsEndpointTests {
    /// The value of the sample `name{labels}` in a Prometheus text exposition, if present.
    static func sample(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test(arguments: TestEngine.available)
    func metricsCountRequestsTransitionsAndTheTriggerQueue(engine: TestEngine) async throws {
        // A database of its own: the queue and state gauges count every dataset.
        let api = try await TestAPI(store: TestStores.make(engine, isolated: true))
        let names = Names()
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        // One event waits for a webhook endpoint.
        _ = try await api.store.relayEvents(endpoint: "hook", limit: 10, now: Date(), subscription: .everything)
        try await api.store.recordEvents([PlanEvent(type: .computeCircuitOpened, time: Date(), datasetId: nil, sequence: nil)])
        // (PostgreSQL's feed gives it once older transactions of the tests beside this one end.)
        try await eventually("the event relayed", timeout: .seconds(120)) {
            try await api.store.relayEvents(endpoint: "hook", limit: 10, now: Date(), subscription: .everything) > 0
        }
        try await api.test { client in
            let token = try await client.token()
            #expect(try await client.send(.post, "/api/plan", token: token, json: submissionJSON(fixture)).status == .ok)
            let missing = try await client.send(.get, "/api/plan/\(UUID().uuidString.lowercased())")
            #expect(missing.status == .notFound)

            let response = try await client.send(.get, "/metrics")
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
            let text = response.text
            func value(_ series: String) -> Double? { Self.sample(text, series) }
            #expect(value(#"fletcher_http_requests_total{method="POST",route="/api/plan",status="200"}"#) == 1, "\(text)")
            #expect(value(#"fletcher_http_requests_total{method="GET",route="/api/plan/{dataset_id}",status="404"}"#) == 1)
            #expect(value(#"fletcher_http_request_duration_seconds_count{method="POST",route="/api/plan",status="200"}"#) == 1)
            #expect(value(#"fletcher_state_transitions_total{from="none",to="waiting",reason="api"}"#) == 2)
            #expect(value(#"fletcher_state_transitions_total{from="waiting",to="queued",reason="trigger_rule"}"#) == 1)
            // `a` is queued for cams, which has no target here: pending and undeliverable.
            #expect(value(#"fletcher_dispatch_pending{compute="cams"}"#) == 1)
            #expect(value(#"fletcher_dispatch_undeliverable{compute="cams"}"#) == 1)
            #expect(value(#"fletcher_dispatch_in_flight{compute="cams"}"#) == 0)
            #expect((value(#"fletcher_dispatch_oldest_pending_age_seconds{compute="cams"}"#) ?? -1) >= 0)
            #expect(value(#"fletcher_dispatch_circuit_open{compute="cams"}"#) == 0)
            #expect(value(#"fletcher_dispatch_pending{compute="dbxaas"}"#) == 0)
            #expect(value(#"fletcher_datasets{state="active"}"#) == 1)
            #expect(value(#"fletcher_data_products{state="queued"}"#) == 1)
            #expect(value(#"fletcher_data_products{state="waiting"}"#) == 1)
            #expect(value("fletcher_db_up") == 1)
            #expect(value("fletcher_live_streams") == 0)
            #expect(value(#"fletcher_webhook_pending{endpoint="hook"}"#) == 1)
            #expect((value(#"fletcher_webhook_oldest_pending_age_seconds{endpoint="hook"}"#) ?? -1) >= 0)
            #expect(value(#"fletcher_webhook_consecutive_failures{endpoint="hook"}"#) == 0)
            // (A caller may be waiting for a pooled connection at the scrape on a loaded machine.)
            #expect((value("fletcher_db_pool_waiting") ?? -1) >= 0)
        }
    }

    @Test(arguments: TestEngine.available)
    func everyAnswerCarriesARequestIdTakenFromTheCallerWhenSane(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        try await api.test { client in
            let given = try await client.send(.get, "/health", headers: [HTTPField.Name("X-Request-Id")!: "trace-42.a:b_c"])
            #expect(given.headers[HTTPField.Name("X-Request-Id")!] == "trace-42.a:b_c")
            let made = try await client.send(.get, "/health", headers: [HTTPField.Name("X-Request-Id")!: "bad id\u{7f}<script>"])
            let id = try #require(made.headers[HTTPField.Name("X-Request-Id")!])
            #expect(UUID(uuidString: id) != nil)
            let problem = try await client.send(.get, "/no/such/path")
            #expect(problem.headers[HTTPField.Name("X-Request-Id")!] != nil)
        }
    }
}
