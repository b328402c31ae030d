import FletcherAPI
public import FletcherDomain
import Foundation
public import HTTPTypes
public import OpenAPIRuntime

/// A plan's JSON exactly as `openapi.yaml`'s `Plan` schema describes it, written directly.
///
/// Every mutation and every plan read answers with the whole plan, and encoding it through the
/// generated types with Foundation's `JSONEncoder` took half the server's CPU time (profiled with
/// `perf` under `fletcher stress --scenario reads`). The handlers still return the generated type;
/// `PlanResponseFastPath` swaps in this encoding on the way out. Tests check that both encodings
/// are the same JSON.
public enum PlanJSON {
    public static func encode(_ plan: Plan) -> String {
        var out = ""
        out.reserveCapacity(200 + plan.dataProducts.count * 420 + plan.dependencies.count * 220)
        out += #"{"dataset":{"id":""#
        out += plan.dataset.id.lowercased
        out += #"","paused":"#
        out += plan.dataset.paused ? "true" : "false"
        out += #","extra":"#
        write(plan.dataset.extra, to: &out)
        out += #","modified_by":"#
        JSONValue.writeString(plan.dataset.modifiedBy, to: &out)
        out += #","modified_date":""#
        RFC3339DateTranscoder.write(plan.dataset.modifiedDate, to: &out)
        out += #""},"data_products":["#
        for (offset, product) in plan.dataProducts.enumerated() {
            if offset > 0 { out += "," }
            out += #"{"id":""#
            out += product.id.lowercased
            out += #"","compute":""#
            out += product.compute.rawValue
            out += #"","name":"#
            JSONValue.writeString(product.name, to: &out)
            out += #","version":"#
            JSONValue.writeString(product.version, to: &out)
            out += #","eager":"#
            out += product.eager ? "true" : "false"
            out += #","passthrough":"#
            write(product.passthrough, to: &out)
            out += #","state":""#
            out += product.state.rawValue
            out += #"","run_id":"#
            if let runId = product.runId {
                out += "\""
                out += runId.lowercased
                out += "\""
            } else {
                out += "null"
            }
            out += #","link":"#
            if let link = product.link { JSONValue.writeString(link, to: &out) } else { out += "null" }
            out += #","passback":"#
            write(product.passback, to: &out)
            out += #","extra":"#
            write(product.extra, to: &out)
            out += #","modified_by":"#
            JSONValue.writeString(product.modifiedBy, to: &out)
            out += #","modified_date":""#
            RFC3339DateTranscoder.write(product.modifiedDate, to: &out)
            out += #""}"#
        }
        out += #"],"dependencies":["#
        for (offset, dependency) in plan.dependencies.enumerated() {
            if offset > 0 { out += "," }
            out += #"{"parent_id":""#
            out += dependency.parentId.lowercased
            out += #"","child_id":""#
            out += dependency.childId.lowercased
            out += #"","extra":"#
            write(dependency.extra, to: &out)
            out += #","modified_by":"#
            JSONValue.writeString(dependency.modifiedBy, to: &out)
            out += #","modified_date":""#
            RFC3339DateTranscoder.write(dependency.modifiedDate, to: &out)
            out += #""}"#
        }
        out += "]}"
        return out
    }

    private static func write(_ value: JSONValue?, to out: inout String) {
        if let value { value.write(to: &out) } else { out += "null" }
    }
}

/// Where a handler leaves a plan's JSON for `PlanResponseFastPath` (a task-local slot, one per request).
final class PlanBodySlot: @unchecked Sendable {
    @TaskLocal static var current: PlanBodySlot?
    // Written and read by the one task serving the request, never concurrently.
    var text: String?
}

extension Components.Schemas.Plan {
    /// What an operation answering with a plan returns: the generated value, or — when the request
    /// came through `PlanResponseFastPath` — a stand-in, the plan's JSON having been written to
    /// its slot (the runtime then encodes only the stand-in, which the fast path discards).
    static func answer(_ plan: Plan) -> Self {
        guard let slot = PlanBodySlot.current else { return .init(plan) }
        slot.text = PlanJSON.encode(plan)
        return standIn
    }

    private static let standIn = Components.Schemas.Plan(
        dataset: .init(id: WireUUID(UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))), paused: false, extra: try! .init(unvalidatedValue: nil), modifiedBy: "", modifiedDate: Date(timeIntervalSince1970: 0)),
        dataProducts: [], dependencies: [])
}

/// Registers the generated operations on `transport` and, for answers that carry a whole plan,
/// replaces the runtime's encoding of the stand-in with `PlanJSON`'s text.
struct PlanResponseFastPath: ServerTransport {
    let transport: any ServerTransport

    func register(
        _ handler: @escaping @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?),
        method: HTTPRequest.Method, path: String
    ) throws {
        try transport.register(
            { request, body, metadata in
                let slot = PlanBodySlot()
                var (response, responseBody) = try await PlanBodySlot.$current.withValue(slot) {
                    try await handler(request, body, metadata)
                }
                if let text = slot.text, response.status == .ok {
                    let bytes = Array(text.utf8)
                    responseBody = HTTPBody(bytes)
                    response.headerFields[.contentLength] = String(bytes.count)
                }
                return (response, responseBody)
            }, method: method, path: path)
    }
}
