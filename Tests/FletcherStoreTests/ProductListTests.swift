import FletcherDomain
import FletcherStore
import FletcherTestSupport
import Foundation
import Testing

/// Data products across datasets (`Store.dataProducts`), newest change first, in cursor pages.
@Suite("Data products across datasets")
struct ProductListTests {
    /// Four datasets of three products (`a` → `b`, and `c` of the other compute type): the first two
    /// with `a` failed and `c` running, the third with `a` succeeded (so `b` is queued), the fourth
    /// as submitted. Changes come in several mutations, so that products share a change time within
    /// a dataset and differ across them. Returns the datasets' ids, in the order they were made.
    func load(_ store: any Store, names: Names) async throws -> [UUID] {
        var ids: [UUID] = []
        for index in 0..<4 {
            let dataset = "dataset\(index)"
            let fixture = PlanFixture(names: names, dataset: dataset).products("a\(index)", "b\(index)").edge("a\(index)", "b\(index)")
                .products("c\(index)", compute: .dbxaas)
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
            switch index {
            case 0, 1:
                _ = try await store.apply(
                    .update([StateUpdate(id: names.id("a\(index)"), state: .failed), StateUpdate(id: names.id("c\(index)"), state: .running)]),
                    to: fixture.datasetId, by: "platform")
            case 2:
                _ = try await store.apply(.update([StateUpdate(id: names.id("a\(index)"), state: .success)]), to: fixture.datasetId, by: "platform")
            default:
                break
            }
            ids.append(fixture.datasetId)
        }
        return ids
    }

    /// Every product of `datasets`, read plan by plan, in the list's order.
    func everyProduct(_ store: any Store, _ datasets: [UUID]) async throws -> [ListedProduct] {
        var listed: [ListedProduct] = []
        for id in datasets {
            let plan = try #require(try await store.plan(id))
            listed += plan.dataProducts.map { ListedProduct(datasetId: id, product: $0) }
        }
        return listed.sorted { ProductCursor($0) > ProductCursor($1) }
    }

    /// Every page of `query`, `limit` at a time, following the cursors.
    func walk(_ store: any Store, _ query: ProductQuery) async throws -> [ListedProduct] {
        var query = query
        var listed: [ListedProduct] = []
        for _ in 0..<100 {
            let page = try await store.dataProducts(query)
            #expect(page.products.count <= query.limit)
            listed += page.products
            guard let next = page.next else { return listed }
            #expect(!page.products.isEmpty)
            query.after = next
        }
        Issue.record("more than 100 pages")
        return listed
    }

    @Test(arguments: TestEngine.available)
    func everyFilterInEveryPageSizeGivesWhatThePlansHold(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let names = Names()
        let datasets = try await load(store, names: names)
        let all = try await everyProduct(store, datasets)
        #expect(all.count == 12)
        // Changes at one time within a dataset, at different times across them.
        #expect(Set(all.map(\.product.modifiedDate)).count > 4)
        let since = all.map(\.product.modifiedDate).sorted()[6]
        let queries: [ProductQuery] = [
            ProductQuery(),
            ProductQuery(states: [.failed]),
            ProductQuery(states: [.failed, .running]),
            ProductQuery(states: [.waiting, .queued, .success]),
            ProductQuery(states: Set(DataProductState.allCases)),
            ProductQuery(compute: .dbxaas),
            ProductQuery(states: [.failed], compute: .cams),
            ProductQuery(states: [.running], compute: .cams),
            ProductQuery(datasetId: datasets[1]),
            ProductQuery(states: [.failed, .waiting], datasetId: datasets[0]),
            ProductQuery(since: since),
            ProductQuery(states: [.failed, .running], since: since),
            ProductQuery(datasetId: UUID()),
        ]
        for query in queries {
            let expected = all.filter(query.matches)
            for limit in [1, 2, 5, 1000] {
                var paged = query
                paged.limit = limit
                let listed = try await walk(store, paged)
                #expect(listed == expected, "\(query), limit \(limit)")
            }
        }
        // What the filters select, told apart from the oracle: the failed products are the two `a`s.
        #expect(try await store.dataProducts(ProductQuery(states: [.failed])).products.map(\.product.id).sorted { $0.uuidString < $1.uuidString }
            == [names.id("a0"), names.id("a1")].sorted { $0.uuidString < $1.uuidString })
        #expect(try await store.dataProducts(ProductQuery(compute: .dbxaas)).products.count == 4)
    }

    @Test(arguments: TestEngine.available)
    func aChangeMovesAProductToTheFront(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let names = Names()
        let datasets = try await load(store, names: names)
        _ = try await store.apply(.update([StateUpdate(id: names.id("b2"), state: .running)]), to: datasets[2], by: "platform")
        let first = try #require(try await store.dataProducts(ProductQuery(limit: 1)).products.first)
        #expect(first.datasetId == datasets[2] && first.product.id == names.id("b2") && first.product.state == .running)
        let page = try await store.dataProducts(ProductQuery(limit: 1))
        #expect(page.next == ProductCursor(first))
    }
}
