import FletcherAPI
import FletcherDomain
@testable import FletcherHTTP
import FletcherStore
import Foundation
import OpenAPIRuntime

/// A plan as JSON through the generated types and `JSONEncoder`: what the OpenAPI runtime would
/// write for it, the reference `PlanJSON`'s output is compared with.
enum WireJSON {
    static func plan(_ plan: Plan, pretty: Bool = true) -> String {
        String(decoding: encode(Components.Schemas.Plan(plan), pretty: pretty), as: UTF8.self)
    }

    /// A page of the product list.
    static func page(_ page: ProductPage) -> Data {
        encode(Components.Schemas.DataProductPage(page), pretty: false)
    }

    static func encode(_ value: some Encodable, pretty: Bool) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys]
        let transcoder = RFC3339DateTranscoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(try transcoder.encode(date))
        }
        // Wire values always encode: they were built from domain values.
        return try! encoder.encode(value)
    }
}

extension Components.Schemas.DataProductPage {
    init(_ page: ProductPage) {
        self.init(
            dataProducts: page.products.map { listed in
                .init(value1: .init(datasetId: WireUUID(listed.datasetId)), value2: .init(listed.product))
            },
            nextCursor: Nullable(page.next?.text))
    }
}

// The generated types made from a plan, for the reference encoding (the server writes plans with
// `PlanJSON`; data products alone through `Components.Schemas.DataProduct.init`).

extension Components.Schemas.Plan {
    init(_ plan: Plan) {
        self.init(
            dataset: .init(plan), dataProducts: plan.dataProducts.map(Components.Schemas.DataProduct.init),
            dependencies: plan.dependencies.map(Components.Schemas.Dependency.init))
    }
}

extension Components.Schemas.Dataset {
    init(_ plan: Plan) {
        let dataset = plan.dataset
        self.init(
            id: WireUUID(dataset.id), paused: dataset.paused, deadline: Nullable(dataset.deadline), late: plan.isLate,
            extra: dataset.extra.container,
            modifiedBy: dataset.modifiedBy, modifiedDate: dataset.modifiedDate)
    }
}

extension Components.Schemas.Dependency {
    init(_ dependency: Dependency) {
        self.init(
            parentId: WireUUID(dependency.parentId), childId: WireUUID(dependency.childId),
            extra: dependency.extra.container, modifiedBy: dependency.modifiedBy, modifiedDate: dependency.modifiedDate)
    }
}
