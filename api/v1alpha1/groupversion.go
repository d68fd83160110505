package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group is the API group of connectors.
const Group = "connectors.alauda.io"

// GroupVersion is the group and version of this API.
var GroupVersion = schema.GroupVersion{Group: Group, Version: "v1alpha1"}

// AddToScheme registers Connector, ConnectorClass and their lists with s.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Connector{}, &ConnectorList{}, &ConnectorClass{}, &ConnectorClassList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
