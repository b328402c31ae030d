import FletcherAPI
public import FletcherDomain
import FletcherJSON
public import FletcherStore
import Foundation
import HTTPTypes
import OpenAPIRuntime

/// A plan's JSON exactly as `openapi.yaml`'s `Plan` schema describes it, written directly.
///
/// Every mutation and every plan read answers with the whole plan (`PlanRoutes`); encoding it
/// through the generated types with Foundation's `JSONEncoder` took half the server's CPU time
/// under read load. Tests check that this and the generated types' encoding are the same JSON.
public enum PlanJSON {
    /// The plan as UTF-8 JSON; the rows' JSON comes from, and goes to, `fragments` when there are
    /// some (big plans held in the store's cache: `PlanCache.fragments(of:)`).
    public static func encode(_ plan: Plan, fragments: PlanFragments? = nil) -> [UInt8] {
        var writer = Writer(plan, fragments: fragments)
        var out = JSONBytes(capacity: estimatedSize(of: plan))
        while !writer.write(into: &out, until: .max) {}
        return out.bytes
    }

    /// About how many bytes the plan's JSON takes (an upper bound for rows without extras).
    package static func estimatedSize(of plan: Plan) -> Int {
        200 + plan.dataProducts.count * 640 + plan.dependencies.count * 200
    }

    /// The plan's JSON in pieces of about `pieceSize` bytes, each written when it is asked for: an
    /// answer of 100,000 products is 90 MB of JSON, which otherwise sits whole in memory (and is
    /// copied once more on its way out) before its first byte is sent.
    public struct Pieces: AsyncSequence, Sendable {
        public typealias Element = ArraySlice<UInt8>
        let plan: Plan
        let fragments: PlanFragments?
        let pieceSize: Int

        public init(_ plan: Plan, fragments: PlanFragments? = nil, pieceSize: Int = PlanJSON.pieceSize) {
            self.plan = plan
            self.fragments = fragments
            self.pieceSize = Swift.max(1, pieceSize)
        }

        public struct AsyncIterator: AsyncIteratorProtocol {
            var writer: Writer
            let pieceSize: Int
            var done = false

            public mutating func next() async -> ArraySlice<UInt8>? {
                guard !done else { return nil }
                // A little over the piece: a row is never split.
                var out = JSONBytes(capacity: pieceSize + 1_024)
                done = writer.write(into: &out, until: pieceSize)
                return out.bytes.isEmpty && done ? nil : ArraySlice(out.bytes)
            }
        }

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(writer: Writer(plan, fragments: fragments), pieceSize: pieceSize)
        }
    }

    /// Below the mmap threshold the server sets (`MemoryReturn`), so each piece reuses heap memory
    /// freed by the one before; big enough that a 10 MB answer is 20 writes, each piece's hand-off
    /// to the connection costing little beside writing it (docs/PERFORMANCE.md).
    public static let pieceSize = 512 * 1_024

    /// Answers bigger than this (by `estimatedSize`) are sent in `Pieces`; smaller ones whole, with
    /// their length.
    static let streamedSize = 4 * 1_024 * 1_024

    /// Writes a plan's JSON in order, as much at a time as asked for.
    struct Writer {
        private enum Stage { case head, products(Int), dependencies(Int), done }
        private let plan: Plan
        private let fragments: PlanFragments?
        private let known: PlanFragments.Parts?
        private var stage = Stage.head
        private var freshProducts: [(Int, [UInt8])] = []
        private var freshDependencies: [(Int, [UInt8])] = []

        init(_ plan: Plan, fragments: PlanFragments?) {
            self.plan = plan
            self.fragments = fragments
            self.known = fragments?.snapshot
        }

        /// Appends rows to `out` until it holds `size` bytes or more, or the JSON is complete; true
        /// once it is (the fragments then get the rows written anew).
        mutating func write(into out: inout JSONBytes, until size: Int) -> Bool {
            while out.bytes.count < size {
                switch stage {
                case .head:
                    out.raw(#"{"dataset":{"id":"#)
                    out.uuid(plan.dataset.id)
                    out.raw(#","paused":"#)
                    out.bool(plan.dataset.paused)
                    out.raw(#","deadline":"#)
                    if let deadline = plan.dataset.deadline { out.date(deadline) } else { out.raw("null") }
                    out.raw(#","late":"#)
                    out.bool(plan.isLate)
                    writeStamp(
                        extra: plan.dataset.extra, modifiedBy: plan.dataset.modifiedBy, modifiedDate: plan.dataset.modifiedDate,
                        to: &out)
                    out.raw(#","data_products":["#)
                    stage = .products(0)
                case .products(let from):
                    let next = Self.rows(plan.dataProducts, from: from, known: known?.products, fresh: &freshProducts, into: &out, until: size) {
                        PlanJSON.write($0, to: &$1)
                    }
                    guard next == plan.dataProducts.count else {
                        stage = .products(next)
                        continue
                    }
                    out.raw(#"],"dependencies":["#)
                    stage = .dependencies(0)
                case .dependencies(let from):
                    let next = Self.rows(plan.dependencies, from: from, known: known?.dependencies, fresh: &freshDependencies, into: &out, until: size) {
                        PlanJSON.write($0, to: &$1)
                    }
                    guard next == plan.dependencies.count else {
                        stage = .dependencies(next)
                        continue
                    }
                    out.raw("]}")
                    fragments?.fill(products: freshProducts, dependencies: freshDependencies)
                    stage = .done
                case .done:
                    return true
                }
            }
            if case .done = stage { return true }
            return false
        }

        /// Writes `rows` comma-separated from `position` on, until `out` holds `size` bytes or none is
        /// left; returns the position of the next row. A row comes from its fragment in `known` when
        /// there is one; one written anew goes to `fresh` (a plan keeping no fragments has no
        /// `known`, and keeps nothing of what is written).
        private static func rows<Row>(
            _ rows: [Row], from position: Int, known: [[UInt8]?]?, fresh: inout [(Int, [UInt8])], into out: inout JSONBytes,
            until size: Int, _ write: (Row, inout JSONBytes) -> Void
        ) -> Int {
            var position = position
            while position < rows.count && out.bytes.count < size {
                if position > 0 { out.raw(",") }
                if let known {
                    if position < known.count, let fragment = known[position] {
                        out.append(fragment)
                    } else {
                        var bytes = JSONBytes(capacity: 512)
                        write(rows[position], &bytes)
                        out.append(bytes.bytes)
                        // Kept at its size: written into 512 bytes' room, a dependency's 230 bytes
                        // of JSON held twice their size (a cached 10,000-product plan's fragments).
                        fresh.append((position, bytes.bytes.copiedToSize()))
                    }
                } else {
                    write(rows[position], &out)
                }
                position += 1
            }
            return position
        }
    }

    /// A page of the product list exactly as `openapi.yaml`'s `DataProductPage` describes it: each
    /// product's JSON as in a plan, after its `dataset_id` (`GET /api/data_products`, `ProductListRoutes`).
    public static func encode(_ page: ProductPage) -> [UInt8] {
        var out = JSONBytes(capacity: 64 + page.products.count * 720)
        out.raw(#"{"data_products":["#)
        for (index, listed) in page.products.enumerated() {
            out.raw(index == 0 ? #"{"dataset_id":"# : #",{"dataset_id":"#)
            out.uuid(listed.datasetId)
            out.raw(",")
            write(listed.product, to: &out, opened: true)
        }
        out.raw(#"],"next_cursor":"#)
        if let next = page.next { out.string(next.text) } else { out.raw("null") }
        out.raw("}")
        return out.bytes
    }

    /// `opened`: the object's brace (and its first fields) are written already.
    fileprivate static func write(_ product: DataProduct, to out: inout JSONBytes, opened: Bool = false) {
        out.raw(opened ? #""id":"# : #"{"id":"#)
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
        out.raw(#","try":"#)
        out.json(JSONNode.integer(product.tryNumber))
        out.raw(#","trigger_id":"#)
        if let triggerId = product.triggerId { out.uuid(triggerId) } else { out.raw("null") }
        out.raw(#","retry_at":"#)
        if let retryAt = product.retryAt { out.date(retryAt) } else { out.raw("null") }
        out.raw(#","timeout_at":"#)
        if let timeoutAt = product.timeoutAt { out.date(timeoutAt) } else { out.raw("null") }
        let limits = product.limits
        out.raw(#","retries":"#)
        out.json(limits.retries.map(JSONNode.integer) ?? .null)
        out.raw(#","max_queued_s":"#)
        out.json(limits.maxQueuedSeconds.map(JSONNode.number) ?? .null)
        out.raw(#","max_running_s":"#)
        out.json(limits.maxRunningSeconds.map(JSONNode.number) ?? .null)
        out.raw(#","deadline":"#)
        if let deadline = product.deadline { out.date(deadline) } else { out.raw("null") }
        out.raw(#","late":"#)
        out.bool(product.isLate)
        writeStamp(extra: product.extra, modifiedBy: product.modifiedBy, modifiedDate: product.modifiedDate, to: &out)
    }

    fileprivate static func write(_ dependency: Dependency, to out: inout JSONBytes) {
        out.raw(#"{"parent_id":"#)
        out.uuid(dependency.parentId)
        out.raw(#","child_id":"#)
        out.uuid(dependency.childId)
        writeStamp(extra: dependency.extra, modifiedBy: dependency.modifiedBy, modifiedDate: dependency.modifiedDate, to: &out)
    }

    /// The fields every row ends with, and its closing brace.
    fileprivate static func writeStamp(extra: JSONValue?, modifiedBy: String, modifiedDate: Date, to out: inout JSONBytes) {
        out.raw(#","extra":"#)
        out.json(extra)
        out.raw(#","modified_by":"#)
        out.string(modifiedBy)
        out.raw(#","modified_date":"#)
        out.date(modifiedDate)
        out.raw("}")
    }
}
