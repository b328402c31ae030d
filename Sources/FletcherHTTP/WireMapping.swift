import FletcherAPI
import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation
import OpenAPIRuntime

// Wire types (generated from openapi.yaml) ⇄ domain types, at the edge only.

extension JSONValue {
    /// A JSON value decoded by the runtime; nil for JSON null. Strings may not contain NUL (no
    /// database stores it), and a 400 names the field otherwise.
    init?(_ container: OpenAPIValueContainer?, field: @autoclosure () -> String) throws {
        guard let container, let node = try JSONNode(any: container.value, field: field) else { return nil }
        guard node.depth <= Self.maxDepth else {
            throw Problem.badRequest("\(field()) nests arrays and objects deeper than \(Self.maxDepth) levels")
        }
        self.init(node)
    }

    /// How deep free-form JSON (extra, passthrough, passback) may nest.
    static let maxDepth = 32

    var container: OpenAPIValueContainer {
        // Values built from JSONValue are always valid container contents.
        try! OpenAPIValueContainer(unvalidatedValue: node.anyValue)
    }
}

extension JSONNode {
    fileprivate init?(any value: (any Sendable)?, field: () -> String) throws {
        switch value {
        case nil: return nil
        case let value as Bool: self = .bool(value)
        case let value as Int: self = .integer(value)
        case let value as Double: self = .number(value)
        case let value as String:
            try checkText(value, field: field())
            self = .string(value)
        case let values as [(any Sendable)?]:
            self = .array(try values.map { try JSONNode(any: $0, field: field) ?? .null })
        case let members as [String: (any Sendable)?]:
            var object = [String: JSONNode](minimumCapacity: members.count)
            for (key, member) in members {
                try checkText(key, field: field())
                object[key] = try JSONNode(any: member, field: field) ?? .null
            }
            self = .object(object)
        default:
            throw Problem.badRequest("Unsupported JSON value in \(field())")
        }
    }

    fileprivate var anyValue: (any Sendable)? {
        switch self {
        case .null: nil
        case .bool(let value): value
        case .integer(let value): value
        case .number(let value): value
        case .string(let value): value
        case .array(let values): values.map(\.anyValue)
        case .object(let members): members.mapValues(\.anyValue)
        }
    }
}

extension Optional where Wrapped == JSONValue {
    /// The wire value; JSON null when absent.
    var container: OpenAPIValueContainer { self?.container ?? Self.null }

    private static let null = try! OpenAPIValueContainer(unvalidatedValue: nil)
}

/// Refuses text no database can store (NUL characters) with a 400 naming the field.
func checkText(_ text: String, field: String) throws {
    if text.utf8.contains(0) { throw Problem.badRequest("\(field) contains a NUL character") }
}

extension PlanSubmission {
    init(_ wire: Components.Schemas.PlanSubmission) throws {
        let products = try wire.dataProducts.enumerated().map { offset, product in
            let field = "data_products[\(offset)]"
            try checkText(product.name, field: field + ".name")
            try checkText(product.version, field: field + ".version")
            return PlanSubmission.DataProduct(
                id: product.id.uuid, compute: Compute(product.compute), name: product.name, version: product.version,
                eager: product.eager, passthrough: try JSONValue(product.passthrough, field: field + ".passthrough"),
                extra: try JSONValue(product.extra, field: field + ".extra"),
                limits: ProductLimits(
                    retries: product.retries?.value, maxQueuedSeconds: product.maxQueuedS, maxRunningSeconds: product.maxRunningS),
                deadline: product.deadline?.value)
        }
        let dependencies = try wire.dependencies.enumerated().map { offset, dependency in
            PlanSubmission.Dependency(
                parentId: dependency.parentId.uuid, childId: dependency.childId.uuid,
                extra: try JSONValue(dependency.extra, field: "dependencies[\(offset)].extra"))
        }
        self.init(
            datasetId: wire.dataset.id.uuid, datasetExtra: try JSONValue(wire.dataset.extra, field: "dataset.extra"),
            datasetDeadline: wire.dataset.deadline?.value, dataProducts: products, dependencies: dependencies)
    }
}

extension StateUpdate {
    init(_ wire: Components.Schemas.StateUpdate, offset: Int) throws {
        if let link = wire.link?.value { try checkText(link, field: "[\(offset)].link") }
        self.init(
            id: wire.id.uuid, state: DataProductState(wire.state), runId: wire.runId?.value?.uuid,
            link: wire.link?.value, passback: try JSONValue(wire.passback, field: "[\(offset)].passback"),
            triggerId: wire.triggerId?.value?.uuid)
    }
}

extension Compute {
    init(_ wire: Components.Schemas.Compute) {
        switch wire {
        case .cams: self = .cams
        case .dbxaas: self = .dbxaas
        }
    }
}

extension DataProductState {
    init(_ wire: Components.Schemas.State) {
        self = DataProductState(rawValue: wire.rawValue)!
    }
}

extension Components.Schemas.DataProduct {
    init(_ product: DataProduct) {
        self.init(
            id: WireUUID(product.id), compute: Components.Schemas.Compute(rawValue: product.compute.rawValue)!,
            name: product.name, version: product.version, eager: product.eager,
            passthrough: product.passthrough.container,
            state: Components.Schemas.State(rawValue: product.state.rawValue)!,
            runId: Nullable(product.runId.map(WireUUID.init)), link: Nullable(product.link),
            passback: product.passback.container, _try: product.tryNumber,
            triggerId: Nullable(product.triggerId.map(WireUUID.init)), retryAt: Nullable(product.retryAt),
            timeoutAt: Nullable(product.timeoutAt), retries: Nullable(product.limits.retries),
            maxQueuedS: Nullable(product.limits.maxQueuedSeconds), maxRunningS: Nullable(product.limits.maxRunningSeconds),
            deadline: Nullable(product.deadline), late: product.isLate, extra: product.extra.container, modifiedBy: product.modifiedBy, modifiedDate: product.modifiedDate)
    }
}

extension Components.Schemas.SearchPage {
    init(_ page: SearchPage) {
        self.init(
            rows: page.rows.map { row in
                .init(datasetId: WireUUID(row.datasetId), extra: row.extra.container, modifiedDate: row.modifiedDate)
            },
            nextPage: Nullable(page.nextPage.map(Int64.init)))
    }
}

extension Components.Schemas.HistoryPage {
    init(_ page: HistoryPage) {
        self.init(
            events: page.events.map(Components.Schemas.HistoryEvent.init),
            nextCursor: Nullable(page.nextCursor.map(String.init)))
    }
}

extension Components.Schemas.HistoryEvent {
    init(_ event: ProductEvent) {
        var transition: StateTransition?
        var actor: String?
        var delivery: DeliveryAttempt?
        switch event.kind {
        case .stateChange(let change, let by):
            transition = change
            actor = by
        case .delivery(let attempt):
            delivery = attempt
        }
        self.init(
            sequence: event.sequence, at: event.at, kind: transition == nil ? .delivery : .stateChange,
            from: Nullable(transition?.from?.rawValue), to: Nullable(transition?.to.rawValue),
            reason: Nullable(transition?.reason.rawValue), actor: Nullable(actor),
            runId: Nullable(transition?.runId.map(WireUUID.init)), link: Nullable(transition?.link),
            _try: Nullable(transition?.tryNumber),
            triggerId: Nullable((delivery?.triggerId ?? transition?.triggerId).map(WireUUID.init)),
            attempt: Nullable(delivery?.attempt), cancel: Nullable(delivery?.isCancel),
            httpStatus: Nullable(delivery?.httpStatus), error: Nullable(delivery?.error),
            durationMs: Nullable(delivery?.durationMilliseconds), process: Nullable(delivery?.process))
    }
}

