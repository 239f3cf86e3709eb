package backend

import "context"

// Keys is a key provider that lives apart from the store: a Vault or
// OpenBao transit key, an OCI Vault key.
type Keys interface {
	// Ensure makes the key, or finds it made, and returns its identifier.
	Ensure(ctx context.Context) (string, []Call, error)
	// Check compares the live key with the identifier the lock records.
	Check(ctx context.Context, id string) ([]Finding, []Call, error)
}

// Keyed is a store whose key comes from a separate provider: Create makes
// the key first and opens the store with its identifier, so the bucket is
// encrypted with it; Verify checks both.
func Keyed(keys Keys, spec Spec, open func(Spec) (Store, error)) Store {
	return &keyed{keys: keys, spec: spec, open: open}
}

type keyed struct {
	keys Keys
	spec Spec
	open func(Spec) (Store, error)
}

func (k *keyed) store(id string) (Store, error) {
	s := k.spec
	s.Key.ID = id
	return k.open(s)
}

func (k *keyed) Create(ctx context.Context) (*Provisioned, error) {
	id, calls, err := k.keys.Ensure(ctx)
	if err != nil {
		return &Provisioned{Calls: calls}, err
	}
	st, err := k.store(id)
	if err != nil {
		return &Provisioned{Key: id, Calls: calls}, err
	}
	p, err := st.Create(ctx)
	if p == nil {
		p = &Provisioned{}
	}
	p.Key, p.Calls = id, append(calls, p.Calls...)
	return p, err
}

func (k *keyed) Probe(ctx context.Context) ([]ProbeResult, []Call, error) {
	st, err := k.store(k.spec.Key.ID)
	if err != nil {
		return nil, nil, err
	}
	return st.Probe(ctx)
}

func (k *keyed) Verify(ctx context.Context, keyID string) ([]Finding, []Call, error) {
	fs, calls, err := k.keys.Check(ctx, keyID)
	if err != nil {
		return fs, calls, err
	}
	st, err := k.store(keyID)
	if err != nil {
		return fs, calls, err
	}
	more, c2, err := st.Verify(ctx, keyID)
	return append(fs, more...), append(calls, c2...), err
}

// Local is the store of kind local: a state file beside the configuration,
// for demos and tests. There is nothing to create, probe or verify.
type Local struct{}

func (Local) Create(context.Context) (*Provisioned, error) { return &Provisioned{}, nil }
func (Local) Probe(context.Context) ([]ProbeResult, []Call, error) {
	return nil, nil, nil
}
func (Local) Verify(context.Context, string) ([]Finding, []Call, error) { return nil, nil, nil }
