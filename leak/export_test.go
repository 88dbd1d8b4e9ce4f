package leak

// NumShards is numShards, for the external tests that open a resource in
// another shard than its holder's.
const NumShards = numShards
