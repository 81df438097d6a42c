"""Heroin-assisted treatment (HAT, iOAT): enrolled patients, their legal identity (encrypted,
read by prescribers and pharmacists only) and versioned prescriptions under hard caps."""
