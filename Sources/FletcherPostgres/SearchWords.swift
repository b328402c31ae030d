import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Which words of a search term the trigram index is asked for.
///
/// The index answers `LIKE '%term%'` by intersecting the lists of datasets holding each of the
/// term's trigrams, and a word most datasets hold costs the most while ruling out almost nothing:
/// with a million datasets all named "… plan N", the four lists of "plan" hold every dataset, and
/// asking for them makes a search for "stress 5f3a1b2c plan 1234" markedly dearer. So the words in
/// more than `commonShare` of a sample of the stored texts are left out of what the index is
/// asked for (`%stress%5f3a1b2c%1234%`, which every text matching the whole term also matches),
/// and the whole term filters what the index found: the answer is the same, only its cost changes.
struct SearchWords: Sendable {
    /// Below this many sampled texts every word is asked for (small databases search cheaply).
    static let minimumSample = 500
    /// The most texts sampled.
    static let sampleSize = 2_000
    /// A word in more than this share of the sampled texts is left out of the index's search.
    static let commonShare = 0.02
    /// The words asked for must rule out all but about this share of the texts together (the
    /// product of their shares in the sample), or the whole term is asked for: what the index finds
    /// is read and filtered, which costs more than the common words' lists beyond a few hundred
    /// rows. Words found together more often than apart make that estimate low; it is bounded by
    /// the rarest word's share, at most `commonShare`.
    static let selectiveShare = 0.001
    /// How long a sample serves before it is taken again.
    static let lifetime: Duration = .seconds(600)

    /// In how many sampled texts each trigram (three characters, packed) occurs.
    private let counts: [UInt64: Int]
    let sampled: Int

    init(sample: [String]) {
        var counts: [UInt64: Int] = [:]
        var seen = Set<UInt64>()
        for text in sample {
            seen.removeAll(keepingCapacity: true)
            Self.forEachTrigram(of: Array(text.unicodeScalars)) { seen.insert($0) }
            for trigram in seen { counts[trigram, default: 0] += 1 }
        }
        self.counts = counts
        sampled = sample.count
    }

    /// The pattern to ask the index for when searching for `text` (lowercased, as stored texts
    /// are): its uncommon words of three characters or more, in order, between wildcards. Nil when
    /// that would be no cheaper than the whole term: a small sample, no common word, no other, or
    /// the others together not rare enough (`selectiveShare`).
    func indexPattern(for text: String) -> String? {
        guard sampled >= Self.minimumSample else { return nil }
        let words = Self.words(of: text).filter { $0.count >= 3 }
        let kept = words.map { (word: $0, share: rarity($0) / Double(sampled)) }.filter { $0.share <= Self.commonShare }
        let share = kept.reduce(1.0) { $0 * $1.share }
        guard !kept.isEmpty, kept.count < words.count, share <= Self.selectiveShare else { return nil }
        // Words are letters and digits only: nothing in them is special to LIKE.
        return "%" + kept.map { String(String.UnicodeScalarView($0.word)) }.joined(separator: "%") + "%"
    }

    /// In how many sampled texts the rarest trigram of `word` is: at most that many hold the word.
    private func rarity(_ word: [Unicode.Scalar]) -> Double {
        var rarest = Int.max
        Self.forEachTrigram(of: word) { rarest = min(rarest, counts[$0] ?? 0) }
        return Double(rarest)
    }

    /// The runs of letters and digits in `text`, in order.
    static func words(of text: String) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for scalar in text.unicodeScalars {
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
                current.append(scalar)
            } else if !current.isEmpty {
                words.append(current)
                current = []
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    private static func forEachTrigram(of scalars: [Unicode.Scalar], _ body: (UInt64) -> Void) {
        guard scalars.count >= 3 else { return }
        for start in 0...(scalars.count - 3) {
            body(UInt64(scalars[start].value) << 42 | UInt64(scalars[start + 1].value) << 21 | UInt64(scalars[start + 2].value))
        }
    }
}

extension SearchWords {
    /// A sample of the stored search texts: pages picked at random (`TABLESAMPLE SYSTEM`), about
    /// `sampleSize` texts, whatever the table's size.
    static func sample(_ connection: PostgresConnection, _ logger: Logger) async throws -> SearchWords {
        let rows = try await SearchQueries.estimatedTexts(connection, logger)
        // Never analysed (-1) or small: read it all, up to the sample's size.
        let percent = rows > Double(sampleSize) ? min(100, 100 * 2 * Double(sampleSize) / rows) : 100
        return SearchWords(sample: try await SearchQueries.sampleTexts(percent: percent, limit: sampleSize, connection, logger))
    }

    /// The store's current sample, taken again once `lifetime` old (by one search; the others use
    /// the previous sample meanwhile).
    final class Holder: Sendable {
        private struct State {
            var words: SearchWords?
            var takenAt: ContinuousClock.Instant?
            var taking = false
        }
        private let state = Mutex(State())

        /// The sample to use now; takes one first when there is none or it is old and no other
        /// search is taking one.
        func current(_ connection: PostgresConnection, _ logger: Logger) async throws -> SearchWords? {
            let now = ContinuousClock.now
            let (words, takeNew) = state.withLock { state -> (SearchWords?, Bool) in
                let stale = state.takenAt.map { now - $0 > SearchWords.lifetime } ?? true
                guard stale, !state.taking else { return (state.words, false) }
                state.taking = true
                return (state.words, true)
            }
            guard takeNew else { return words }
            do {
                let taken = try await SearchWords.sample(connection, logger)
                state.withLock {
                    $0.words = taken
                    $0.takenAt = now
                    $0.taking = false
                }
                return taken
            } catch {
                state.withLock { $0.taking = false }
                throw error
            }
        }
    }
}
