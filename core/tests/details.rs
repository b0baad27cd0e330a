mod common;

use common::*;
use polku_core::Error;

#[test]
fn set_get_clear_and_history() {
    let p = profile();
    let d = p.polku.details();
    assert!(d.get().unwrap().is_empty());
    d.set("phone", Some("+358 40 123 4567")).unwrap();
    d.set("address", Some("Hämeenkatu 1 A 2, Tampere")).unwrap();
    d.set("phone", Some("+358 50 765 4321")).unwrap();
    let now = d.get().unwrap();
    assert_eq!(now.len(), 2);
    let phone = now.iter().find(|v| v.field == "phone").unwrap();
    assert_eq!(phone.current.value.as_deref(), Some("+358 50 765 4321"));
    assert!(phone.conflicting.is_empty(), "one device: no conflict");
    let history = d.history("phone").unwrap();
    assert_eq!(history.len(), 2, "the old number is kept in history");
    assert_eq!(history[0].value.as_deref(), Some("+358 40 123 4567"));

    d.set("address", None).unwrap();
    let now = d.get().unwrap();
    assert_eq!(
        now.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(),
        vec!["phone"]
    );
    assert_eq!(
        d.history("address").unwrap().len(),
        2,
        "clearing is an edit too"
    );
}

#[test]
fn unknown_fields_and_long_values_are_typed_errors() {
    let p = profile();
    match p.polku.details().set("door_code", Some("1234")) {
        Err(Error::Validation { field, allowed, .. }) => {
            assert_eq!(field, "field");
            assert!(allowed.contains("access_instructions"), "{allowed}");
        }
        other => panic!("{other:?}"),
    }
    let long = "x".repeat(41);
    match p.polku.details().set("phone", Some(&long)) {
        Err(Error::Validation { field, allowed, .. }) => {
            assert_eq!(field, "phone");
            assert_eq!(allowed, "at most 40 characters");
        }
        other => panic!("{other:?}"),
    }
}
