// Where image bytes live. Placeholder: the file store lands here (a store
// interface, so the object store can back images later).
export {};
