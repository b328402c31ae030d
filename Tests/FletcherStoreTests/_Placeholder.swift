enum _PlaceholderFletcherStoreTests {}
