package oci

import (
	"context"
	"fmt"
	"maps"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/keymanagement"

	"github.com/groundzero/groundzero/internal/backend"
)

// KeyLength is the length in bytes of the AES key Ensure makes.
const KeyLength = 32

// maxPages bounds ListKeys paging.
const maxPages = 100

// Keys is the OCI Vault key of one spec.
type Keys struct {
	client      *keymanagement.KmsManagementClient
	endpoint    string
	compartment string
	vault       string
	name        string
	tags        map[string]string
}

// String names the key; the signing key is not printed.
func (k Keys) String() string { return fmt.Sprintf("oci vault key %q in %s", k.name, k.endpoint) }

// GoString prints as String does.
func (k Keys) GoString() string { return k.String() }

// NewKeys returns the key spec names: display name spec.Key.Name in
// compartment spec.Compartment, in the vault whose management endpoint is
// opt.ManagementEndpoint (or spec.Key.Address). When spec.Key.Vault is set,
// only keys of that vault count.
func NewKeys(spec backend.Spec, opt Options) (*Keys, error) {
	if p := spec.Key.Provider; p != "" && p != backend.KeyOCIVault {
		return nil, fmt.Errorf("oci: key provider %s is not %s", p, backend.KeyOCIVault)
	}
	if spec.Compartment == "" || spec.Key.Name == "" {
		return nil, fmt.Errorf("oci: the vault key needs a compartment and key.name")
	}
	if opt.ConfigProvider == nil {
		return nil, errNoProvider
	}
	ep := opt.ManagementEndpoint
	if ep == "" {
		ep = spec.Key.Address
	}
	if ep == "" {
		return nil, fmt.Errorf("oci: the vault key needs the vault's management endpoint (key.address)")
	}
	ep, err := endpoint("management endpoint", ep)
	if err != nil {
		return nil, err
	}
	client, err := keymanagement.NewKmsManagementClientWithConfigurationProvider(opt.ConfigProvider, ep)
	if err != nil {
		return nil, fmt.Errorf("oci: key management client: %w", err)
	}
	if opt.HTTPClient != nil {
		client.HTTPClient = opt.HTTPClient
	}
	return &Keys{client: &client, endpoint: ep, compartment: spec.Compartment, vault: spec.Key.Vault, name: spec.Key.Name, tags: maps.Clone(spec.Tags)}, nil
}

// Ensure finds the key by display name, or makes it: AES, 32 bytes,
// protection mode HSM, with the spec's freeform tags given at creation. A
// key still being created or enabled counts as found, so a second run
// shortly after the first makes no second key; two usable keys of the name
// are an error. It returns the key's OCID and the calls made (on error, the
// calls made until then).
//
// Call outcomes: ListKeys "read" for a page without the key, "exists" for
// the page with it (Resource is then the key's OCID) or "failed"; CreateKey
// "created" or "failed".
func (k *Keys) Ensure(ctx context.Context) (id string, calls []backend.Call, err error) {
	var found []keymanagement.KeySummary
	req := keymanagement.ListKeysRequest{CompartmentId: common.String(k.compartment)}
	for page := 0; ; page++ {
		if page == maxPages {
			return "", calls, fmt.Errorf("%s: ListKeys %s: more than %d pages", ServiceKMS, k.compartment, maxPages)
		}
		resp, err := k.client.ListKeys(ctx, req)
		call := backend.Call{Service: ServiceKMS, Operation: "ListKeys", RequestID: str(resp.OpcRequestId), Resource: k.compartment, Outcome: "read"}
		if err != nil {
			call.Outcome = "failed"
			return "", append(calls, call), fail(ServiceKMS, "ListKeys", k.compartment, err)
		}
		for _, s := range resp.Items {
			if str(s.DisplayName) != k.name || (k.vault != "" && str(s.VaultId) != k.vault) {
				continue
			}
			switch s.LifecycleState {
			case keymanagement.KeySummaryLifecycleStateEnabled, keymanagement.KeySummaryLifecycleStateCreating, keymanagement.KeySummaryLifecycleStateEnabling:
				found = append(found, s)
				call.Resource, call.Outcome = str(s.Id), "exists"
			}
		}
		calls = append(calls, call)
		if str(resp.OpcNextPage) == "" {
			break
		}
		req.Page = resp.OpcNextPage
	}
	switch len(found) {
	case 1:
		return str(found[0].Id), calls, nil
	case 0:
	default:
		return "", calls, fmt.Errorf("%s: %d keys named %q are usable in compartment %s (%s, %s): record the one to use by its OCID", ServiceKMS, len(found), k.name, k.compartment, str(found[0].Id), str(found[1].Id))
	}

	resp, err := k.client.CreateKey(ctx, keymanagement.CreateKeyRequest{CreateKeyDetails: keymanagement.CreateKeyDetails{
		CompartmentId:  common.String(k.compartment),
		DisplayName:    common.String(k.name),
		KeyShape:       &keymanagement.KeyShape{Algorithm: keymanagement.KeyShapeAlgorithmAes, Length: common.Int(KeyLength)},
		ProtectionMode: keymanagement.CreateKeyDetailsProtectionModeHsm,
		FreeformTags:   maps.Clone(k.tags),
	}})
	call := backend.Call{Service: ServiceKMS, Operation: "CreateKey", RequestID: str(resp.OpcRequestId), Resource: str(resp.Id), Outcome: "created"}
	if err != nil {
		call.Resource, call.Outcome = k.compartment, "failed"
		return "", append(calls, call), fail(ServiceKMS, "CreateKey", k.compartment, err)
	}
	calls = append(calls, call)
	if call.Resource == "" {
		return "", calls, fmt.Errorf("%s: CreateKey %s: the answer carries no key OCID (opc-request-id %s)", ServiceKMS, k.name, call.RequestID)
	}
	return call.Resource, calls, nil
}

// Check reads the key id names and reports it missing (or not visible),
// not enabled, or not protected by an HSM. The GetKey call's outcome is
// "read", "missing" or "failed".
func (k *Keys) Check(ctx context.Context, id string) ([]backend.Finding, []backend.Call, error) {
	if id == "" {
		return nil, nil, fmt.Errorf("%s: no key OCID to check", ServiceKMS)
	}
	resp, err := k.client.GetKey(ctx, keymanagement.GetKeyRequest{KeyId: common.String(id)})
	call := backend.Call{Service: ServiceKMS, Operation: "GetKey", RequestID: str(resp.OpcRequestId), Resource: id, Outcome: "read"}
	if notFound(err) {
		call.Outcome = "missing"
		return []backend.Finding{{Check: "key", Resource: id, Detail: "the key does not exist or is not visible to these credentials"}}, []backend.Call{call}, nil
	}
	if err != nil {
		call.Outcome = "failed"
		return nil, []backend.Call{call}, fail(ServiceKMS, "GetKey", id, err)
	}
	var fs []backend.Finding
	if resp.LifecycleState != keymanagement.KeyLifecycleStateEnabled {
		fs = append(fs, backend.Finding{Check: "key", Resource: id, Detail: fmt.Sprintf("the key is %s, not ENABLED", resp.LifecycleState)})
	}
	if resp.ProtectionMode != keymanagement.KeyProtectionModeHsm {
		fs = append(fs, backend.Finding{Check: "key", Resource: id, Detail: fmt.Sprintf("the key's protection mode is %q, not HSM", resp.ProtectionMode)})
	}
	return fs, []backend.Call{call}, nil
}
