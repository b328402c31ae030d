import FletcherAPI
public import FletcherDomain
import Foundation
import HTTPTypes
import OpenAPIRuntime

/// A plan's JSON exactly as `openapi.yaml`'s `Plan` schema describes it, written directly.
///
/// Every mutation and every plan read answers with the whole plan, and encoding it through the
/// generated types with Foundation's `JSONEncoder` took half the server's CPU time (profiled with
/// `perf` under `fletcher stress --scenario reads`). The handlers still return the generated type;
/// `PlanResponseFastPath` swaps in this encoding on the way out. Tests check that both encodings
/// are the same JSON.
public enum PlanJSON {
    /// The plan as UTF-8 JSON; the rows' JSON comes from, and goes to, the plan's fragments when it
    /// has them (big plans held in the store's cache).
    public static func encode(_ plan: Plan) -> [UInt8] {
        var out = JSONBytes(capacity: 200 + plan.dataProducts.count * 460 + plan.dependencies.count * 200)
        out.raw(#"{"dataset":{"id":"#)
        out.uuid(plan.dataset.id)
        out.raw(#","paused":"#)
        out.bool(plan.dataset.paused)
        writeStamp(extra: plan.dataset.extra, modifiedBy: plan.dataset.modifiedBy, modifiedDate: plan.dataset.modifiedDate, to: &out)
        out.raw(#","data_products":["#)
        let known = plan.fragments?.snapshot
        let products = rows(plan.dataProducts, known: known?.products, rowCapacity: 512, into: &out) { write($0, to: &$1) }
        out.raw(#"],"dependencies":["#)
        let dependencies = rows(plan.dependencies, known: known?.dependencies, rowCapacity: 256, into: &out) { write($0, to: &$1) }
        out.raw("]}")
        plan.fragments?.fill(products: products, dependencies: dependencies)
        return out.bytes
    }

    /// Writes `rows` comma-separated, each from its fragment in `known` when there is one; returns
    /// the fragments written anew (none when the plan keeps no fragments).
    private static func rows<Row>(
        _ rows: [Row], known: [[UInt8]?]?, rowCapacity: Int, into out: inout JSONBytes,
        _ write: (Row, inout JSONBytes) -> Void
    ) -> [(Int, [UInt8])] {
        var written: [(Int, [UInt8])] = []
        for (position, row) in rows.enumerated() {
            if position > 0 { out.raw(",") }
            guard let known else {
                write(row, &out)
                continue
            }
            if position < known.count, let fragment = known[position] {
                out.append(fragment)
            } else {
                var fresh = JSONBytes(capacity: rowCapacity)
                write(row, &fresh)
                out.append(fresh.bytes)
                written.append((position, fresh.bytes))
            }
        }
        return written
    }

    private static func write(_ product: DataProduct, to out: inout JSONBytes) {
        out.raw(#"{"id":"#)
        out.uuid(product.id)
        out.raw(#","compute":"#)
        out.string(product.compute.rawValue)
        out.raw(#","name":"#)
        out.string(product.name)
        out.raw(#","version":"#)
        out.string(product.version)
        out.raw(#","eager":"#)
        out.bool(product.eager)
        out.raw(#","passthrough":"#)
        out.json(product.passthrough)
        out.raw(#","state":"#)
        out.string(product.state.rawValue)
        out.raw(#","run_id":"#)
        if let runId = product.runId { out.uuid(runId) } else { out.raw("null") }
        out.raw(#","link":"#)
        if let link = product.link { out.string(link) } else { out.raw("null") }
        out.raw(#","passback":"#)
        out.json(product.passback)
        writeStamp(extra: product.extra, modifiedBy: product.modifiedBy, modifiedDate: product.modifiedDate, to: &out)
    }

    private static func write(_ dependency: Dependency, to out: inout JSONBytes) {
        out.raw(#"{"parent_id":"#)
        out.uuid(dependency.parentId)
        out.raw(#","child_id":"#)
        out.uuid(dependency.childId)
        writeStamp(extra: dependency.extra, modifiedBy: dependency.modifiedBy, modifiedDate: dependency.modifiedDate, to: &out)
    }

    /// The fields every row ends with, and its closing brace.
    private static func writeStamp(extra: JSONValue?, modifiedBy: String, modifiedDate: Date, to out: inout JSONBytes) {
        out.raw(#","extra":"#)
        out.json(extra)
        out.raw(#","modified_by":"#)
        out.string(modifiedBy)
        out.raw(#","modified_date":"#)
        out.date(modifiedDate)
        out.raw("}")
    }
}

/// Where a handler leaves a plan's JSON for `PlanResponseFastPath` (a task-local slot, one per request).
final class PlanBodySlot: @unchecked Sendable {
    @TaskLocal static var current: PlanBodySlot?
    // Written and read by the one task serving the request, never concurrently.
    var json: [UInt8]?
}

extension Components.Schemas.Plan {
    /// What an operation answering with a plan returns: the generated value, or — when the request
    /// came through `PlanResponseFastPath` — a stand-in, the plan's JSON having been written to
    /// its slot (the runtime then encodes only the stand-in, which the fast path discards).
    static func answer(_ plan: Plan) -> Self {
        guard let slot = PlanBodySlot.current else { return .init(plan) }
        slot.json = PlanJSON.encode(plan)
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
                if let bytes = slot.json, response.status == .ok {
                    responseBody = HTTPBody(bytes)
                    response.headerFields[.contentLength] = String(bytes.count)
                }
                return (response, responseBody)
            }, method: method, path: path)
    }
}
