variable "name" {
  description = "Name of the EKS cluster; also the prefix of the IAM roles, KMS keys and log group the module creates."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 characters of lower-case letters, digits and hyphens, starting with a letter (it prefixes IAM role names, which are limited in length)."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and the managed node groups, e.g. \"1.33\"."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.(29|3[0-9])$", var.kubernetes_version))
    error_message = "kubernetes_version must be a minor version EKS offers under standard support, from 1.29 on, e.g. \"1.33\"."
  }
}

variable "subnet_ids" {
  description = "Private subnets, in at least two availability zones, for the control-plane network interfaces and (unless a node group names its own) the nodes."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2 && length(distinct(var.subnet_ids)) == length(var.subnet_ids)
    error_message = "subnet_ids must list at least two distinct subnets (EKS requires two availability zones)."
  }
}

variable "endpoint_public_access" {
  description = "Whether the Kubernetes API is also reachable from the internet (only from endpoint_public_access_cidrs). The private endpoint is always on."
  type        = bool
  default     = false
}

variable "endpoint_public_access_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach the public API endpoint when endpoint_public_access is true (e.g. the office or VPN egress). 0.0.0.0/0 is refused."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.endpoint_public_access_cidrs : can(cidrhost(c, 0))])
    error_message = "endpoint_public_access_cidrs must be valid IPv4 CIDR blocks."
  }

  validation {
    condition     = alltrue([for c in var.endpoint_public_access_cidrs : try(tonumber(split("/", c)[1]) > 0, false)])
    error_message = "endpoint_public_access_cidrs must not open the API to the whole internet (0.0.0.0/0); list the networks that need it."
  }
}

variable "cluster_log_types" {
  description = "Control-plane log types sent to CloudWatch Logs."
  type        = list(string)
  default     = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  validation {
    condition     = length(var.cluster_log_types) > 0 && alltrue([for t in var.cluster_log_types : contains(["api", "audit", "authenticator", "controllerManager", "scheduler"], t)])
    error_message = "cluster_log_types must be a non-empty subset of api, audit, authenticator, controllerManager and scheduler."
  }

  validation {
    condition     = contains(var.cluster_log_types, "audit") && contains(var.cluster_log_types, "authenticator")
    error_message = "cluster_log_types must include audit and authenticator: without them nobody can tell who did what to the cluster."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch Logs keeps the control-plane logs (a value CloudWatch accepts)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the retention periods CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "node_groups" {
  description = <<-EOT
    Managed node groups by name. Each: instance_types; capacity_type ON_DEMAND (default) or SPOT;
    min_size, desired_size, max_size; disk_size in GiB (default 50); labels; taints
    (key, value, effect NO_SCHEDULE | NO_EXECUTE | PREFER_NO_SCHEDULE); subnet_ids (default: var.subnet_ids,
    set it to pin a group to one zone, e.g. for pods with zonal EBS volumes); ami_type (default AL2023_x86_64_STANDARD).
    At least one group must be ON_DEMAND: system pods (CoreDNS, KEDA, the operators) must not sit on spot capacity only.
  EOT
  type = map(object({
    instance_types = list(string)
    capacity_type  = optional(string, "ON_DEMAND")
    min_size       = number
    desired_size   = number
    max_size       = number
    disk_size      = optional(number, 50)
    labels         = optional(map(string), {})
    taints = optional(list(object({
      key    = string
      value  = optional(string)
      effect = string
    })), [])
    subnet_ids = optional(list(string))
    ami_type   = optional(string, "AL2023_x86_64_STANDARD")
  }))

  validation {
    condition     = length(var.node_groups) > 0 && alltrue([for k, g in var.node_groups : can(regex("^[a-z][a-z0-9-]{0,37}$", k))])
    error_message = "node_groups must define at least one group, each named with 1-38 lower-case letters, digits and hyphens."
  }
  validation {
    condition     = alltrue([for g in values(var.node_groups) : contains(["ON_DEMAND", "SPOT"], g.capacity_type)])
    error_message = "capacity_type must be ON_DEMAND or SPOT."
  }
  validation {
    condition     = alltrue([for g in values(var.node_groups) : g.min_size >= 0 && g.min_size <= g.desired_size && g.desired_size <= g.max_size && g.max_size >= 1])
    error_message = "each node group needs 0 <= min_size <= desired_size <= max_size and max_size >= 1."
  }
  validation {
    condition     = alltrue([for g in values(var.node_groups) : length(g.instance_types) > 0])
    error_message = "each node group needs at least one instance type."
  }
  validation {
    condition     = alltrue([for g in values(var.node_groups) : g.capacity_type != "SPOT" || length(g.instance_types) >= 2])
    error_message = "a SPOT node group needs at least two instance types, so one interrupted spot pool does not empty it."
  }
  validation {
    condition     = anytrue([for g in values(var.node_groups) : g.capacity_type == "ON_DEMAND" && g.min_size >= 1])
    error_message = "at least one ON_DEMAND node group with min_size >= 1 is needed for system pods."
  }
  validation {
    condition     = alltrue(flatten([for g in values(var.node_groups) : [for t in g.taints : contains(["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"], t.effect)]]))
    error_message = "taint effect must be NO_SCHEDULE, NO_EXECUTE or PREFER_NO_SCHEDULE."
  }
  validation {
    condition     = alltrue([for g in values(var.node_groups) : g.disk_size >= 20 && g.disk_size <= 16384])
    error_message = "disk_size must be between 20 and 16384 GiB."
  }
}

variable "addons" {
  description = <<-EOT
    EKS add-ons by name, each with an optional version (null: the default for the cluster's version)
    and optional configuration_values (JSON). vpc-cni and aws-ebs-csi-driver get IAM roles for their
    service accounts from this module.
  EOT
  type = map(object({
    version              = optional(string)
    configuration_values = optional(string)
  }))
  default = {
    vpc-cni                = {}
    kube-proxy             = {}
    coredns                = {}
    eks-pod-identity-agent = {}
    aws-ebs-csi-driver     = {}
  }

  validation {
    condition     = alltrue([for a in ["vpc-cni", "kube-proxy", "coredns"] : contains(keys(var.addons), a)])
    error_message = "addons must include the core add-ons vpc-cni, kube-proxy and coredns."
  }
  validation {
    condition     = alltrue([for a in values(var.addons) : a.configuration_values == null || can(jsondecode(a.configuration_values))])
    error_message = "configuration_values must be JSON."
  }
}

variable "ebs_kms_key_arns" {
  description = "KMS keys the EBS CSI driver may use to create encrypted volumes (e.g. the RabbitMQ volume key)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.ebs_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:", a))])
    error_message = "ebs_kms_key_arns must be KMS key ARNs."
  }
}

variable "service_account_roles" {
  description = <<-EOT
    IAM roles for Kubernetes service accounts (IRSA), by role suffix: namespace, service_account,
    an optional inline policy_json and optional managed_policy_arns. Cargo uses it for KEDA and the canary
    where they need AWS access.
  EOT
  type = map(object({
    namespace           = string
    service_account     = string
    policy_json         = optional(string)
    managed_policy_arns = optional(list(string), [])
  }))
  default = {}

  validation {
    condition     = alltrue([for k, r in var.service_account_roles : can(regex("^[a-z][a-z0-9-]{0,30}$", k)) && can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", r.namespace)) && can(regex("^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$", r.service_account))])
    error_message = "service_account_roles keys must be short lower-case names, and namespace and service_account valid Kubernetes names."
  }
  validation {
    condition     = alltrue([for r in values(var.service_account_roles) : r.policy_json == null || can(jsondecode(r.policy_json))])
    error_message = "policy_json must be a JSON IAM policy document."
  }
  validation {
    condition     = alltrue([for r in values(var.service_account_roles) : r.policy_json != null || length(r.managed_policy_arns) > 0])
    error_message = "each service account role needs a policy_json or managed_policy_arns: a role without permissions is a mistake."
  }
}

variable "admin_principal_arns" {
  description = "IAM role or user ARNs granted cluster-admin through EKS access entries (the platform team's roles, the CI deploy role)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.admin_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/", a))])
    error_message = "admin_principal_arns must be IAM role or user ARNs."
  }
}

variable "creator_is_admin" {
  description = "Whether the identity that creates the cluster keeps cluster-admin (EKS bootstrap_cluster_creator_admin_permissions). Prefer admin_principal_arns."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
