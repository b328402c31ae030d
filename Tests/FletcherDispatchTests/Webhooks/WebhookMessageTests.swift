import FletcherDispatch
import FletcherDomain
import FletcherStore
import Foundation
import Testing

@Suite("Webhook messages")
struct WebhookMessageTests {
    static let eventId = UUID(uuidString: "0F8FAD5B-D9CB-469F-A165-70867728950E")!
    static let datasetId = UUID(uuidString: "7C9E6679-7425-40DE-944B-E07FC1F90AE7")!
    static let productId = UUID(uuidString: "9A8B7C6D-1111-4222-8333-944455556666")!
    /// 2026-11-23T03:20:13.123456Z.
    static let time = Date(timeIntervalSince1970: Double(1_795_404_013_123_456) / 1_000_000)
    /// A minute later, at a fraction of a second: `webhook-timestamp` is its whole seconds.
    static let attempt = Date(timeIntervalSince1970: 1_795_404_073.9)
    static let key = [UInt8](0..<32)
    static let publicURL = "https://fletcher.example/"
    static let url = URL(string: "https://hooks.example/fletcher")!

    static let failed = PlanEvent(
        id: eventId, type: .dataProductFailed, time: time, datasetId: datasetId, sequence: 7, dataProductId: productId,
        data: [
            "final": .bool(true), "try": .integer(2), "reason": .string("api"), "name": .string("load <orders> & co"),
            "compute": .string("cams"),
        ])
    static let eventJSON =
        #"{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","type":"data_product.failed","time":"2026-11-23T03:20:13.123456Z","sequence":7,"#
        + #""dataset_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","data_product_id":"9a8b7c6d-1111-4222-8333-944455556666","#
        + #""cursor":"0.42","data":{"compute":"cams","final":true,"name":"load <orders> & co","reason":"api","try":2}}"#

    /// `event` as a store reads it back, at position 42 of the feed.
    static func stored(_ event: PlanEvent) -> StoredEvent { StoredEvent(event, cursor: EventCursor(order: 0, position: 42)) }

    func message(_ format: WebhookFormat, _ event: PlanEvent = failed, key: [UInt8]? = WebhookMessageTests.key) -> WebhookMessage {
        WebhookMessage(
            event: Self.stored(event), endpoint: WebhookEndpoint(url: Self.url, secret: key, events: [event.type], format: format),
            attempt: Self.attempt, publicURL: Self.publicURL)
    }

    /// The HMAC-SHA256 of `id.timestamp.body` under the key, in base64, as Python's `hmac` and
    /// `base64` compute it for the same input.
    @Test func theSignatureIsStandardWebhooksHMAC() {
        let signature = WebhookMessage.signature(
            id: "0f8fad5b-d9cb-469f-a165-70867728950e", timestamp: "1795404073", body: Array(#"{"type":"x"}"#.utf8), key: Self.key)
        #expect(signature == "v1,vEt5BcPVBjZupaZyWBgcEW85ijtwPeAWQM9Zeyc8Vfo=")
    }

    @Test func standardIsTheTypeTimeAndEventSigned() {
        let message = message(.standard)
        #expect(
            String(decoding: message.body, as: UTF8.self)
                == #"{"type":"data_product.failed","timestamp":"2026-11-23T03:20:13.123456Z","data":\#(Self.eventJSON)}"#)
        #expect(
            message.headers == [
                "content-type": "application/json", "webhook-id": "0f8fad5b-d9cb-469f-a165-70867728950e",
                "webhook-timestamp": "1795404073",
                // Python: base64(hmac.new(bytes(range(32)), b"<id>.1795404073.<body>", sha256).digest())
                "webhook-signature": "v1,+E2tbBj1uRZY1Ie3Tpbfsl09UR0xHcWq7UBXFV3Xw4E=",
            ])
    }

    /// A retry carries the same id and body; only the timestamp and signature are the attempt's.
    @Test func aRetryKeepsTheIdAndBody() {
        let first = message(.standard)
        let endpoint = WebhookEndpoint(url: Self.url, secret: Self.key, events: [.dataProductFailed])
        let retry = WebhookMessage(event: Self.stored(Self.failed), endpoint: endpoint, attempt: Self.attempt.addingTimeInterval(90), publicURL: Self.publicURL)
        #expect(retry.body == first.body)
        #expect(retry.headers["webhook-id"] == first.headers["webhook-id"])
        #expect(retry.headers["webhook-timestamp"] == "1795404163")
        #expect(retry.headers["webhook-signature"] != first.headers["webhook-signature"])
        #expect(
            retry.headers["webhook-signature"]
                == WebhookMessage.signature(id: Self.eventId.uuidString.lowercased(), timestamp: "1795404163", body: retry.body, key: Self.key))
    }

    @Test func cloudEventsIsStructuredJSONSignedWhenThereIsASecret() {
        let message = message(.cloudevents)
        #expect(
            String(decoding: message.body, as: UTF8.self)
                == #"{"specversion":"1.0","id":"0f8fad5b-d9cb-469f-a165-70867728950e","#
                + #""source":"https://fletcher.example/plan/7c9e6679-7425-40de-944b-e07fc1f90ae7","type":"dev.fletcher.data_product.failed","#
                + #""time":"2026-11-23T03:20:13.123456Z","subject":"9a8b7c6d-1111-4222-8333-944455556666","#
                + #""datacontenttype":"application/json","data":\#(Self.eventJSON)}"#)
        #expect(
            message.headers == [
                "content-type": "application/cloudevents+json", "webhook-id": "0f8fad5b-d9cb-469f-a165-70867728950e",
                "webhook-timestamp": "1795404073", "webhook-signature": "v1,gCEGq4hCAYOL5lR6WarXGjhkbpkY0sLpX+xZ7h3Stiw=",
            ])
        let unsigned = self.message(.cloudevents, key: nil)
        #expect(unsigned.body == message.body)
        #expect(unsigned.headers == ["content-type": "application/cloudevents+json", "webhook-id": "0f8fad5b-d9cb-469f-a165-70867728950e"])
    }

    /// An event of no dataset has Fletcher as its source and the compute type as its subject.
    @Test func aPlatformsCloudEventComesFromFletcher() {
        let circuit = PlanEvent(
            id: Self.eventId, type: .computeCircuitOpened, time: Self.time, datasetId: nil, sequence: nil, data: ["compute": .string("cams")])
        #expect(
            String(decoding: message(.cloudevents, circuit, key: nil).body, as: UTF8.self)
                == #"{"specversion":"1.0","id":"0f8fad5b-d9cb-469f-a165-70867728950e","source":"https://fletcher.example","#
                + #""type":"dev.fletcher.compute.circuit_opened","time":"2026-11-23T03:20:13.123456Z","subject":"cams","#
                + #""datacontenttype":"application/json","data":{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","#
                + #""type":"compute.circuit_opened","time":"2026-11-23T03:20:13.123456Z","sequence":null,"dataset_id":null,"#
                + #""data_product_id":null,"cursor":"0.42","data":{"compute":"cams"}}}"#)
    }

    @Test func slackIsOneLineLinkingTheProductAndPlanPages() {
        let message = message(.slack, key: nil)
        let plan = "https://fletcher.example/plan/7c9e6679-7425-40de-944b-e07fc1f90ae7"
        #expect(
            String(decoding: message.body, as: UTF8.self)
                == #"{"text":":x: Data product <\#(plan)/product/9a8b7c6d-1111-4222-8333-944455556666|load &lt;orders&gt; &amp; co> "#
                + #"*failed* (try 2) in plan <\#(plan)|7c9e6679-7425-40de-944b-e07fc1f90ae7> — final"}"#)
        #expect(message.headers == ["content-type": "application/json", "webhook-id": "0f8fad5b-d9cb-469f-a165-70867728950e"])
    }

    static let product = "<https://fletcher.example/plan/7c9e6679-7425-40de-944b-e07fc1f90ae7/product/9a8b7c6d-1111-4222-8333-944455556666|load>"
    static let plan = "<https://fletcher.example/plan/7c9e6679-7425-40de-944b-e07fc1f90ae7|7c9e6679-7425-40de-944b-e07fc1f90ae7>"
    /// 2026-11-23T03:21:43.123456Z, as a Slack date token.
    static let later = "<!date^1795404103^{date_short_pretty} {time_secs}|2026-11-23T03:21:43.123456Z>"

    static let slackLines: [(PlanEventType, [String: EventValue], String)] = [
        (.dataProductFailed, ["try": .integer(1), "final": .bool(false), "retry_at": .time(time.addingTimeInterval(90))],
         ":x: Data product \(product) *failed* (try 1) in plan \(plan) — retry at \(later)"),
        (.dataProductFailed, ["final": .bool(false)], ":x: Data product \(product) *failed* in plan \(plan) — a retry follows"),
        (.dataProductTimedOut, ["try": .integer(1), "reason": .string("timeout")],
         ":hourglass: Data product \(product) *timed out* (try 1) in plan \(plan)"),
        (.dataProductRetrying, ["try": .integer(2)], ":repeat: Data product \(product) *is retrying* (try 2) in plan \(plan)"),
        (.dataProductSucceeded, ["try": .integer(3)], ":white_check_mark: Data product \(product) *succeeded* (try 3) in plan \(plan)"),
        (.dataProductSucceeded, ["try": .integer(3), "late_by_s": .number(3_930.4)],
         ":white_check_mark: Data product \(product) *succeeded* (try 3) in plan \(plan) — 1 h 5 min late"),
        (.dataProductLate, ["deadline": .time(time.addingTimeInterval(90)), "state": .string("running")],
         ":alarm_clock: Data product \(product) *is late* in plan \(plan): still running at its deadline \(later)"),
        (.dataProductCancelled, ["try": .integer(2), "reason": .string("clear")],
         ":no_entry_sign: Data product \(product) *was cancelled* (try 2, clear) in plan \(plan)"),
        (.triggerUndeliverable, ["try": .integer(1)],
         ":warning: The trigger of data product \(product) *could not be delivered* (try 1) in plan \(plan)"),
        (.datasetSucceeded, [:], ":tada: Plan \(plan) *succeeded*"),
        (.datasetSucceeded, ["late_by_s": .number(42)], ":tada: Plan \(plan) *succeeded* — 42 s late"),
        (.datasetLate, ["deadline": .time(time.addingTimeInterval(90)), "unfinished": .integer(3)],
         ":alarm_clock: Plan \(plan) *is late*: 3 data products not done at its deadline \(later)"),
        (.datasetLate, ["deadline": .time(time.addingTimeInterval(90)), "unfinished": .integer(1)],
         ":alarm_clock: Plan \(plan) *is late*: 1 data product not done at its deadline \(later)"),
        (.datasetPaused, [:], ":double_vertical_bar: Plan \(plan) *was paused*"),
        (.datasetUnpaused, [:], ":arrow_forward: Plan \(plan) *was unpaused*"),
        (.computeCircuitOpened, ["compute": .string("cams")],
         ":rotating_light: Compute platform `cams` *is failing*: its circuit opened and its triggers wait"),
        (.computeCircuitClosed, ["compute": .string("cams")], ":large_green_circle: Compute platform `cams` *recovered*: its circuit closed"),
        (.dataProductQueued, ["try": .integer(3)], ":arrow_right: Data product \(product) *was queued* (try 3) in plan \(plan)"),
        (.dataProductRunning, ["try": .integer(3)], ":gear: Data product \(product) *is running* (try 3) in plan \(plan)"),
        (.dataProductAborted, ["try": .integer(3), "reason": .string("downstream_reset")],
         ":heavy_minus_sign: Data product \(product) *stopped without a result* (try 3, downstream_reset) in plan \(plan)"),
    ]

    @Test(arguments: slackLines)
    func eachTypeHasItsSlackLine(type: PlanEventType, data: [String: EventValue], line: String) throws {
        let isProduct = type.rawValue.hasPrefix("data_product.") || type == .triggerUndeliverable
        let isCompute = type.rawValue.hasPrefix("compute.")
        var data = data
        if isProduct { data["name"] = .string("load") }
        let event = PlanEvent(
            id: Self.eventId, type: type, time: Self.time, datasetId: isCompute ? nil : Self.datasetId, sequence: isCompute ? nil : 3,
            dataProductId: isProduct ? Self.productId : nil, data: data)
        let body = try JSONSerialization.jsonObject(with: Data(message(.slack, event, key: nil).body)) as? [String: String]
        #expect(body == ["text": line])
    }

    @Test func everyTypeHasASlackLine() {
        #expect(Set(Self.slackLines.map(\.0)) == Set(PlanEventType.allCases))
    }
}
