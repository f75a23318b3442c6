package model

// DefaultNamespace exists after cluster bootstrap and cannot be deleted.
const DefaultNamespace = "default"

// Namespace groups pipelines; permissions are usually granted per namespace.
type Namespace struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Created     int64  `json:"created"`
	Modified    int64  `json:"modified"`
}
