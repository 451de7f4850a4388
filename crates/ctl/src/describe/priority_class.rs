//! kubectl's description of a PriorityClass (`describePriorityClass`): Name, Value, GlobalDefault,
//! PreemptionPolicy, Description, and the annotations on one line (`k=v,k2=v2`, all of them, as
//! kubectl's `labels.FormatLabels`); no labels. The events follow, as for every kind.

use navarch_api::table_columns::{at, bool_at, int_at, labels_string, str_at};
use serde_json::Value;

use super::Description;

/// The fields of the PriorityClass `o` (its JSON form).
pub(super) fn describe(d: &mut Description, o: &Value) {
    d.field(0, "Name", str_at(o, "metadata.name"));
    d.field(0, "Value", int_at(o, "value").to_string());
    d.field(0, "GlobalDefault", bool_at(o, "globalDefault").to_string());
    d.field(0, "PreemptionPolicy", str_at(o, "preemptionPolicy"));
    d.field(0, "Description", str_at(o, "description"));
    d.field(0, "Annotations", labels_string(at(o, "metadata.annotations")));
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    #[test]
    fn priority_class_description_like_kubectl() {
        let pc = navarch_api::manifest::parse(
            "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high, annotations: {b: '2', a: '1'}}\nvalue: 1000000\npreemptionPolicy: PreemptLowerPriority\ndescription: For the web tier.\n",
            "t",
        )
        .unwrap()
        .remove(0);
        let out = super::super::describe(&pc, Some(&[]), &[], SystemTime::UNIX_EPOCH);
        assert_eq!(
            out,
            "Name:              high\nValue:             1000000\nGlobalDefault:     false\n\
             PreemptionPolicy:  PreemptLowerPriority\nDescription:       For the web tier.\n\
             Annotations:       a=1,b=2\nEvents:            <none>\n"
        );
    }
}
