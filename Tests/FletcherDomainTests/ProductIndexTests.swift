import FletcherDomain
import Foundation
import PropertyBased
import Testing

@Suite("ProductIndex")
struct ProductIndexTests {
    /// Ids from a small pool (so that some repeat) given as numbers, with a number of others
    /// looked up that may or may not be among them.
    static let cases = Gen.int(in: 0...300).array(of: 0...200)

    private static func id(_ number: Int) -> UUID {
        // Ids that differ in one byte only: the slots must come from the whole id.
        UUID(uuid: (0, 0, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, UInt8(number >> 8), UInt8(number & 0xff)))
    }

    /// Gives the positions a dictionary filled in order gives (of a repeated id, the later), and
    /// nothing for an id not given.
    @Test func givesWhatADictionaryGives() async {
        await propertyCheck(count: 300, input: Self.cases) { numbers in
            let ids = numbers.map(Self.id)
            var dictionary: [UUID: Int] = [:]
            for (position, id) in ids.enumerated() { dictionary[id] = position }
            let index = ProductIndex(ids: ids)
            #expect(index.count == ids.count)
            for number in 0...310 {
                let id = Self.id(number)
                #expect(index[id] == dictionary[id])
                #expect(index.contains(id) == (dictionary[id] != nil))
            }
        }
    }

    @Test func anEmptyIndexHoldsNothing() {
        let index = ProductIndex(ids: [])
        #expect(index.count == 0 && index[UUID()] == nil)
    }

    @Test func aPlansProductsAreFoundAtTheirPositions() {
        let products = (0..<5_000).map {
            DataProduct(id: UUID(), compute: .cams, name: "p\($0)", version: "1", eager: true, modifiedBy: "t", modifiedDate: Date())
        }
        let index = ProductIndex(products)
        #expect(products.indices.allSatisfy { index[products[$0].id] == $0 })
        #expect(index == ProductIndex(ids: products.map(\.id)))
        #expect(index != ProductIndex(ids: products.dropLast().map(\.id)))
    }
}
