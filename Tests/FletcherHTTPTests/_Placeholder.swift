enum _PlaceholderFletcherHTTPTests {}
