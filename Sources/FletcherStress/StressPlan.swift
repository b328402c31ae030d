import FletcherDomain
import FletcherJSON
import Foundation
import NIOCore

/// A plan shaped like the original Fletcher's load-test plan: eleven data products — four
/// non-eager sources, eager and non-eager products downstream — and sixteen dependencies.
struct StressPlan: Sendable {
    struct Product: Sendable {
        var name: String
        var eager: Bool
        var parents: [String]
    }

    static let products: [Product] = [
        Product(name: "source 1", eager: false, parents: []),
        Product(name: "source 2", eager: false, parents: []),
        Product(name: "source 3", eager: false, parents: []),
        Product(name: "source 4", eager: false, parents: []),
        Product(name: "join a", eager: true, parents: ["source 1", "source 2"]),
        Product(name: "join b", eager: true, parents: ["source 2", "source 3"]),
        Product(name: "manual c", eager: false, parents: ["source 3", "source 4"]),
        Product(name: "merge d", eager: true, parents: ["join a", "join b"]),
        Product(name: "merge e", eager: true, parents: ["join b", "manual c"]),
        Product(name: "manual f", eager: false, parents: ["merge d", "merge e"]),
        Product(name: "report g", eager: true, parents: ["manual f", "join a", "merge d", "manual c"]),
    ]

    let datasetId: UUID
    let ids: [String: UUID]
    let label: String

    init(run: String, index: Int) {
        datasetId = UUID()
        ids = Dictionary(uniqueKeysWithValues: Self.products.map { ($0.name, UUID()) })
        label = "stress \(run) plan \(index)"
    }

    var id: String { datasetId.lowercased }
    func id(_ name: String) -> String { ids[name]!.lowercased }

    /// The `POST /api/plan` body.
    var submission: JSONValue {
        .object([
            "dataset": .object(["id": .string(id), "extra": .object(["name": .string(label), "team": .string("stress")])]),
            "data_products": .array(
                Self.products.map { product in
                    .object([
                        "id": .string(id(product.name)), "compute": .string("cams"), "name": .string(product.name),
                        "version": .string("1.0"), "eager": .bool(product.eager), "passthrough": .object(["plan": .string(label)]),
                    ])
                }),
            "dependencies": .array(
                Self.products.flatMap { product in
                    product.parents.map { parent in .object(["parent_id": .string(id(parent)), "child_id": .string(id(product.name))]) }
                }),
        ])
    }

    static var sources: [String] { products.filter(\.parents.isEmpty).map(\.name) }
}

/// What drives one plan to completion the way compute platforms and people do, from the states the
/// server last answered.
struct PlanDriver: Sendable {
    enum Action: Sendable, Equatable {
        /// A platform (or a person, for a non-eager product) reports a state.
        case update(name: String, state: String)
        /// Every product succeeded: clear the sources, which resets the plan, and go again.
        case restart
    }

    let plan: StressPlan
    /// State by product name, as last answered.
    var states: [String: String]

    init(plan: StressPlan) {
        self.plan = plan
        states = Dictionary(uniqueKeysWithValues: StressPlan.products.map { ($0.name, "waiting") })
    }

    /// The next step: start a queued product, finish a running one, start a ready non-eager one by
    /// hand, or restart a finished plan.
    var next: Action {
        for product in StressPlan.products where states[product.name] == "queued" {
            return .update(name: product.name, state: "running")
        }
        for product in StressPlan.products where states[product.name] == "running" {
            return .update(name: product.name, state: "success")
        }
        for product in StressPlan.products where !product.eager && states[product.name] == "waiting" {
            if product.parents.allSatisfy({ states[$0] == "success" }) { return .update(name: product.name, state: "running") }
        }
        return .restart
    }

    /// Eager products that the success of `name` makes ready (queued by the trigger rule).
    func readied(bySuccessOf name: String) -> [String] {
        StressPlan.products.filter { product in
            product.eager && states[product.name] == "waiting" && product.parents.contains(name)
                && product.parents.allSatisfy { $0 == name || states[$0] == "success" }
        }.map(\.name)
    }

    /// Takes the states from a plan as the API answers it (read straight from the bytes: the stress
    /// tool shares the machine with the server, and Foundation's JSON reader was a quarter of its time).
    mutating func absorb(_ body: ByteBuffer?) {
        guard let body else { return }
        var states = self.states
        let read: Void? = body.withUnsafeReadableBytes { bytes in
            try? JSONParser.read(bytes, validatingUTF8: true) { (parser: inout JSONParser) throws(JSONSyntaxError) in
                try parser.readObject { (parser: inout JSONParser, member: String) throws(JSONSyntaxError) in
                    guard member == "data_products" else { return try parser.skipValue() }
                    try parser.readArray { (parser: inout JSONParser) throws(JSONSyntaxError) in
                        var name: String?
                        var state: String?
                        try parser.readObject { (parser: inout JSONParser, member: String) throws(JSONSyntaxError) in
                            switch member {
                            case "name": name = try parser.readString()
                            case "state": state = try parser.readString()
                            default: try parser.skipValue()
                            }
                        }
                        if let name, let state { states[name] = state }
                    }
                }
            }
        }
        if read != nil { self.states = states }
    }
}
