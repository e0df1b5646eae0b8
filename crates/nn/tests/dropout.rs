//! Dropout: probabilities outside `[0, 1)` are errors naming the value.

use tapegrad_nn::{Dropout, Error, Mlp};

// Issue 11, §3.3: a bad probability used to be clamped silently.
#[test]
fn probability_outside_zero_one_is_an_error_naming_it() {
    for (p, shown) in [
        (-0.1, "-0.1"),
        (1.0, "1"),
        (1.5, "1.5"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
    ] {
        let err = Dropout::new(p, 0).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("Dropout::new: drop probability p = {shown} is not in [0, 1)")
        );
    }
    for p in [0.0, 0.5, 0.999] {
        assert_eq!(Dropout::new(p, 0).unwrap().p(), p);
    }
}

#[test]
fn mlp_builder_rejects_a_bad_dropout_too() {
    for p in [-0.5, 1.0, f64::NAN] {
        let err = Mlp::<f32>::builder(&[2, 4, 1])
            .dropout(p)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("drop probability p = "), "{err}");
    }
}

#[test]
fn mlp_without_hidden_layers_still_checks_dropout() {
    let err = tapegrad_nn::Mlp::<f32>::builder(&[3, 2])
        .dropout(f64::NAN)
        .build();
    assert!(err.is_err());
}
