@testable import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// The trigram index is asked only for a search term's uncommon words; the answer stays the whole
/// term's.
@Suite("Search through uncommon words")
struct SearchWordsTests {
    /// 1,000 texts like the bulk-loaded benchmark's: "plan" in every one.
    static let sample = (1...1_000).map { "\(UUID().uuidString.lowercased()) {\"name\": \"bulk plan \($0)\", \"team\": \"bench\"}" }

    @Test func commonWordsAreLeftOutOfWhatTheIndexIsAskedFor() {
        let words = SearchWords(sample: Self.sample)
        #expect(words.indexPattern(for: "stress 5f3a1b2c plan 1234") == "%stress%5f3a1b2c%1234%")
        // Words under three characters give the index nothing to look for.
        #expect(words.indexPattern(for: "stress plan 12") == "%stress%")
        #expect(words.indexPattern(for: "naïve_plan-über") == "%naïve%über%")
        // Nothing to leave out, or nothing left: the whole term.
        #expect(words.indexPattern(for: "stress 5f3a1b2c") == nil)
        #expect(words.indexPattern(for: "bulk plan") == nil)
        #expect(words.indexPattern(for: "plan 12") == nil)
        // The uncommon word left is still in 1.5 % of the texts: reading them would cost more.
        let some = SearchWords(sample: Self.sample.enumerated().map { $0.offset < 15 ? $0.element + " somewhat" : $0.element })
        #expect(some.indexPattern(for: "somewhat plan") == nil)
        #expect(some.indexPattern(for: "somewhat rare plan") == "%somewhat%rare%")
        // Two such words, in different texts: together they rule out enough.
        let two = SearchWords(sample: Self.sample.enumerated().map {
            $0.offset < 15 ? $0.element + " somewhat" : $0.offset < 30 ? $0.element + " another" : $0.element
        })
        #expect(two.indexPattern(for: "somewhat another plan") == "%somewhat%another%")
        // Too small a sample to tell.
        #expect(SearchWords(sample: Array(Self.sample.prefix(100))).indexPattern(for: "stress plan") == nil)
    }

    @Test func wordsAreRunsOfLettersAndDigits() {
        let words = SearchWords.words(of: "a1-b2 c3%d_4\\ é5").map { String(String.UnicodeScalarView($0)) }
        #expect(words == ["a1", "b2", "c3", "d", "4", "é5"])
    }

    /// Against the database: 2,020 datasets, 20 of them a stress run's; every term answers the
    /// same rows, in the same order, through its uncommon words as through the whole term.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func answersAreTheWholeTermsAnswers() async throws {
        let store = try await TestStores.isolatedPostgresStore()
        try await store.migrate()
        let logger = Logger(label: "fletcher-test")
        try await store.database.client.withConnection { connection in
            for (prefix, count) in [("bulk", 2_000), ("stress ab12cd", 20)] {
                try await connection.query(
                    """
                    INSERT INTO dataset (id, paused, extra, modified_by, modified_date, last_modified, revision)
                    SELECT md5(\(prefix) || n)::uuid, false, jsonb_build_object('name', \(prefix) || ' plan ' || n),
                        'test', now(), now() - make_interval(secs => n), 1
                    FROM generate_series(1, \(count)) n
                    """, logger: logger)
                try await connection.query(
                    """
                    INSERT INTO dataset_search (id, search_text)
                    SELECT d.id, lower(d.id::text || ' ' || d.extra::text) FROM dataset d
                    WHERE d.id IN (SELECT md5(\(prefix) || n)::uuid FROM generate_series(1, \(count)) n)
                    """, logger: logger)
            }
            try await connection.query("ANALYZE dataset_search", logger: logger)
        }
        let words = try await store.database.client.withConnection { try await SearchWords.sample($0, logger) }
        #expect(words.sampled == SearchWords.sampleSize)
        #expect(words.indexPattern(for: "stress ab12cd plan 1") == "%stress%ab12cd%")
        for text in ["stress ab12cd plan 1", "ab12cd plan 7", "plan 99", "stress", "bulk plan 1", "b12cd pla", "\"name\": \"stress"] {
            for page in [0, 1] {
                let query = SearchQuery(text: text, page: page)
                let (through, whole) = try await store.database.client.withConnection { connection in
                    (try await SearchQueries.search(query, words: words, store.database.statements, connection, logger),
                     try await SearchQueries.search(query, store.database.statements, connection, logger))
                }
                #expect(through.map(\.datasetId) == whole.map(\.datasetId), "\(text), page \(page)")
            }
        }
        // Through the store: plans 1 and 10–19 of the run.
        let found = try await store.search(SearchQuery(text: "stress ab12cd plan 1", page: 0))
        #expect(found.rows.count == 11)
    }
}
