import Crypto
import FletcherDomain
import FletcherJSON
public import FletcherStore
public import Foundation

/// The HTTP request telling one endpoint of one event: `POST endpoint.url` with these headers and
/// this body. The body is the same on every attempt; the timestamp and signature are the
/// attempt's.
///
/// Every format carries `webhook-id` (the event's id, the same on every retry, so receivers
/// dedupe) and, when the endpoint has a secret, `webhook-timestamp` and `webhook-signature` by the
/// Standard Webhooks scheme: `v1,` and the base64 HMAC-SHA256, keyed by the secret's bytes, of
/// `{webhook-id}.{webhook-timestamp}.{body}`.
///
/// - `standard`: `{"type", "timestamp", "data"}` — the event's type, its time (RFC 3339) and the
///   event object itself, in the one JSON form of the API and the stream (`StoredEvent.writeJSON`).
/// - `slack`: a Slack incoming-webhook body `{"text"}`: one line naming what happened, with links
///   to the plan and product pages on `PUBLIC_URL`.
/// - `cloudevents`: CloudEvents 1.0 structured JSON (`application/cloudevents+json`):
///   `specversion` 1.0, `id` the event's id, `source` the plan page (`{PUBLIC_URL}/plan/{dataset_id}`)
///   or, for an event of no dataset, `PUBLIC_URL`; `type` `dev.fletcher.<type>`; `time`;
///   `subject` the data product's id, or the compute type for a platform's circuit;
///   `datacontenttype` `application/json`; `data` the event object.
public struct WebhookMessage: Sendable, Hashable {
    /// Header names in lower case.
    public var headers: [String: String]
    public var body: [UInt8]

    public init(headers: [String: String], body: [UInt8]) {
        self.headers = headers
        self.body = body
    }

    /// The message for `event` to `endpoint`, attempted at `attempt` (its `webhook-timestamp`);
    /// `publicURL` is Fletcher's address (`PUBLIC_URL`), for links.
    public init(event: StoredEvent, endpoint: WebhookEndpoint, attempt: Date, publicURL: String) {
        let body = Self.body(of: event, format: endpoint.format, publicURL: publicURL)
        var headers = [
            "content-type": endpoint.format == .cloudevents ? "application/cloudevents+json" : "application/json",
            "webhook-id": event.id.lowercased,
        ]
        if let secret = endpoint.secret {
            let timestamp = String(Int64(attempt.timeIntervalSince1970.rounded(.down)))
            headers["webhook-timestamp"] = timestamp
            headers["webhook-signature"] = Self.signature(id: event.id.lowercased, timestamp: timestamp, body: body, key: secret)
        }
        self.init(headers: headers, body: body)
    }

    /// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, the Standard Webhooks signature.
    public static func signature(id: String, timestamp: String, body: [UInt8], key: [UInt8]) -> String {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: key))
        hmac.update(data: Array("\(id).\(timestamp).".utf8))
        hmac.update(data: body)
        return "v1," + Data(hmac.finalize()).base64EncodedString()
    }

    /// The body `format` gives for `event`: the same on every attempt.
    public static func body(of event: StoredEvent, format: WebhookFormat, publicURL: String) -> [UInt8] {
        let base = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        var json = JSONBytes(capacity: 512)
        switch format {
        case .standard:
            json.raw(#"{"type":"#)
            json.string(event.type.rawValue)
            json.raw(#","timestamp":"#)
            json.date(event.time)
            json.raw(#","data":"#)
            event.writeJSON(to: &json)
            json.raw("}")
        case .slack:
            json.raw(#"{"text":"#)
            json.string(SlackText(event: event, publicURL: base).text)
            json.raw("}")
        case .cloudevents:
            json.raw(#"{"specversion":"1.0","id":"#)
            json.uuid(event.id)
            json.raw(#","source":"#)
            json.string(event.datasetId.map { "\(base)/plan/\($0.lowercased)" } ?? base)
            json.raw(#","type":"#)
            json.string("dev.fletcher." + event.type.rawValue)
            json.raw(#","time":"#)
            json.date(event.time)
            if let productId = event.dataProductId {
                json.raw(#","subject":"#)
                json.uuid(productId)
            } else if event.datasetId == nil, case .object(let data) = event.data.node, case .string(let compute)? = data["compute"] {
                json.raw(#","subject":"#)
                json.string(compute)
            }
            json.raw(#","datacontenttype":"application/json","data":"#)
            event.writeJSON(to: &json)
            json.raw("}")
        }
        return json.bytes
    }
}
