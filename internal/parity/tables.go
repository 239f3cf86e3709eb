package parity

import "sort"

// The tables below are the single source of the built-in rules' knowledge
// of resource types. The built-in Rego reads them as data
// (data.groundzero.tables), in groundzero and in the export alike, and the
// README lists them.

// NameAttribute says where a resource type keeps its name.
type NameAttribute struct {
	// Attribute is the attribute that holds the name ("bucket",
	// "identifier"), or "tags.Name" for a type whose name is its Name tag,
	// or "" for a type that has no name of its own.
	Attribute string `json:"attribute"`
	// TrimPrefix is removed from the value before it is matched
	// (aws_kms_alias names begin with "alias/").
	TrimPrefix string `json:"trim_prefix,omitempty"`
	// NamedBy names the type that carries the name of an unnamed type.
	NamedBy string `json:"named_by,omitempty"`
}

// NameAttributes is the per-type name attribute table. A type that is not
// listed is named by its provider's default attribute (defaultNameAttributes).
var NameAttributes = map[string]NameAttribute{
	"aws_s3_bucket":                     {Attribute: "bucket"},
	"aws_s3_directory_bucket":           {Attribute: "bucket"},
	"aws_instance":                      {Attribute: "tags.Name"},
	"aws_spot_instance_request":         {Attribute: "tags.Name"},
	"aws_vpc":                           {Attribute: "tags.Name"},
	"aws_subnet":                        {Attribute: "tags.Name"},
	"aws_internet_gateway":              {Attribute: "tags.Name"},
	"aws_nat_gateway":                   {Attribute: "tags.Name"},
	"aws_route_table":                   {Attribute: "tags.Name"},
	"aws_eip":                           {Attribute: "tags.Name"},
	"aws_ebs_volume":                    {Attribute: "tags.Name"},
	"aws_network_interface":             {Attribute: "tags.Name"},
	"aws_vpc_endpoint":                  {Attribute: "tags.Name"},
	"aws_ec2_transit_gateway":           {Attribute: "tags.Name"},
	"aws_cloudfront_distribution":       {Attribute: "tags.Name"},
	"aws_kms_key":                       {Attribute: "", NamedBy: "aws_kms_alias"},
	"aws_kms_alias":                     {Attribute: "name", TrimPrefix: "alias/"},
	"aws_db_instance":                   {Attribute: "identifier"},
	"aws_rds_cluster":                   {Attribute: "cluster_identifier"},
	"aws_rds_cluster_instance":          {Attribute: "identifier"},
	"aws_elasticache_cluster":           {Attribute: "cluster_id"},
	"aws_elasticache_replication_group": {Attribute: "replication_group_id"},
	"aws_lambda_function":               {Attribute: "function_name"},
	"aws_secretsmanager_secret":         {Attribute: "name"},
	"aws_s3_bucket_versioning":          {Attribute: ""},
	"aws_s3_bucket_policy":              {Attribute: ""},
	"aws_s3_bucket_public_access_block": {Attribute: ""},
	"aws_s3_bucket_server_side_encryption_configuration": {Attribute: ""},
	"google_kms_key_ring":                                {Attribute: "name"},
	"google_service_account":                             {Attribute: "account_id"},
	"oci_objectstorage_bucket":                           {Attribute: "name"},
	"oci_identity_compartment":                           {Attribute: "name"},
	"oci_kms_vault":                                      {Attribute: "display_name"},
	"oci_kms_key":                                        {Attribute: "display_name"},
	"oci_core_instance":                                  {Attribute: "display_name"},
	"oci_core_vcn":                                       {Attribute: "display_name"},
	"digitalocean_spaces_bucket":                         {Attribute: "name"},
	"digitalocean_droplet":                               {Attribute: "name"},
	"digitalocean_kubernetes_cluster":                    {Attribute: "name"},
	"digitalocean_database_cluster":                      {Attribute: "name"},
}

// defaultNameAttributes is the attribute that names a resource of a type
// the table does not list, per provider; such a resource is named only when
// its plan or configuration has the attribute.
var defaultNameAttributes = map[string][]string{
	"aws": {"name"}, "google": {"name"}, "oci": {"display_name", "name"}, "digitalocean": {"name"},
}

// defaultNameAttribute is the attribute for providers not in the list.
const defaultNameAttribute = "name"

// DNSTypes are the DNS zone and record types the "dns" rule denies:
// authoritative DNS is controlled outside the governed repository.
var DNSTypes = []string{
	"aws_route53_zone", "aws_route53_record", "aws_route53_zone_association",
	"aws_route53_delegation_set", "aws_route53_key_signing_key", "aws_route53_hosted_zone_dnssec",
	"aws_route53domains_registered_domain",
	"google_dns_managed_zone", "google_dns_record_set",
	"oci_dns_zone", "oci_dns_record", "oci_dns_rrset",
	"digitalocean_domain", "digitalocean_record",
	"azurerm_dns_zone", "azurerm_dns_a_record", "azurerm_dns_aaaa_record", "azurerm_dns_cname_record",
	"azurerm_dns_mx_record", "azurerm_dns_ns_record", "azurerm_dns_txt_record",
	"cloudflare_zone", "cloudflare_record", "cloudflare_dns_record",
}

// CredentialTypes are the types that mint long-lived credentials (access
// keys, service account keys, passwords, API tokens), which the
// "long-lived-credential" rule flags: secrets belong in a secret store, and
// workloads use short-lived identities.
var CredentialTypes = []string{
	"aws_iam_access_key", "aws_iam_user_login_profile", "aws_iam_service_specific_credential",
	"google_service_account_key", "google_apikeys_key", "google_storage_hmac_key",
	"oci_identity_api_key", "oci_identity_auth_token", "oci_identity_customer_secret_key",
	"oci_identity_smtp_credential", "oci_identity_db_credential",
	"digitalocean_spaces_key",
	"azuread_application_password", "azuread_service_principal_password",
}

// BuiltinRules are the built-in rule ids, each waivable in policy.yaml
// (parity.waive) only with a reason.
var BuiltinRules = []string{
	"allowed-type", "backend", "denied-type", "dns", "long-lived-credential",
	"naming", "region", "required-tag", "tag-value", "unknown",
}

// taggable lists resource types known to take tags, for configurations that
// do not set them (a plan always shows the attribute).
var taggable = map[string]bool{
	"aws_s3_bucket": true, "aws_kms_key": true, "aws_dynamodb_table": true, "aws_iam_role": true,
	"aws_iam_openid_connect_provider": true, "aws_iam_policy": true, "aws_instance": true,
	"google_storage_bucket": true, "google_kms_crypto_key": true,
	"oci_objectstorage_bucket": true, "oci_kms_vault": true, "oci_kms_key": true, "oci_identity_dynamic_group": true,
	"digitalocean_droplet": true, "digitalocean_kubernetes_cluster": true, "digitalocean_database_cluster": true,
}

// tablesData renders the tables for data.groundzero.tables.
func tablesData() map[string]any {
	names := map[string]any{}
	for t, a := range NameAttributes {
		m := map[string]any{"attribute": a.Attribute}
		if a.TrimPrefix != "" {
			m["trim_prefix"] = a.TrimPrefix
		}
		names[t] = m
	}
	defaults := map[string]any{}
	for p, a := range defaultNameAttributes {
		defaults[p] = orEmpty(a)
	}
	tg := []string{}
	for t := range taggable {
		tg = append(tg, t)
	}
	sort.Strings(tg)
	return map[string]any{
		"names": names, "default_names": defaults, "default_name": []any{defaultNameAttribute},
		"dns_types": orEmpty(DNSTypes), "credential_types": orEmpty(CredentialTypes), "taggable": orEmpty(tg),
	}
}
