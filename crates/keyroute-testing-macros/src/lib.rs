//! `#[keyroute_testing::test]`: an async test that receives a fresh, migrated keyroute
//! app. Use it through `keyroute-testing`, which re-exports it and documents it.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprArray, FnArg, ItemFn, Lit, LitStr, Meta, Token};

/// Turns `async fn name(app: TestApp<Postgres>) { .. }` into a `#[test]` that builds
/// the app and runs the body with it. Options, all optional:
/// `migrations = "migrations"` (relative to the crate's Cargo.toml),
/// `config = "keyroute.toml"` (a file, relative to the crate's Cargo.toml),
/// `tenants = ["acme", "globex"]`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// The options the attribute takes.
#[derive(Default)]
struct Options {
    migrations: Option<LitStr>,
    config: Option<LitStr>,
    tenants: Vec<LitStr>,
}

fn string(expr: &Expr, option: &str) -> syn::Result<LitStr> {
    match expr {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Str(s) => Ok(s.clone()),
            other => Err(syn::Error::new(
                other.span(),
                format!("`{option}` takes a string literal"),
            )),
        },
        other => Err(syn::Error::new(
            other.span(),
            format!("`{option}` takes a string literal"),
        )),
    }
}

fn options(args: proc_macro2::TokenStream) -> syn::Result<Options> {
    let mut options = Options::default();
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    for meta in metas {
        let Meta::NameValue(pair) = meta else {
            return Err(syn::Error::new(
                meta.span(),
                "expected `migrations = \"..\"`, `config = \"..\"` or `tenants = [\"..\"]`",
            ));
        };
        let name = pair
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        match name.as_str() {
            "migrations" => options.migrations = Some(string(&pair.value, "migrations")?),
            "config" => options.config = Some(string(&pair.value, "config")?),
            "tenants" => {
                let Expr::Array(ExprArray { elems, .. }) = &pair.value else {
                    return Err(syn::Error::new(
                        pair.value.span(),
                        "`tenants` takes an array of string literals: tenants = [\"acme\"]",
                    ));
                };
                for elem in elems {
                    options.tenants.push(string(elem, "tenants")?);
                }
            }
            _ => {
                return Err(syn::Error::new(
                    pair.path.span(),
                    "unknown option; use `migrations`, `config` or `tenants`",
                ));
            }
        }
    }
    Ok(options)
}

fn expand(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let options = options(args)?;
    let function: ItemFn = syn::parse2(item)?;
    let signature = &function.sig;
    if signature.asyncness.is_none() {
        return Err(syn::Error::new(
            signature.fn_token.span(),
            "#[keyroute_testing::test] needs an `async fn`",
        ));
    }
    let mut inputs = signature.inputs.iter();
    let (Some(FnArg::Typed(argument)), None) = (inputs.next(), inputs.next()) else {
        return Err(syn::Error::new(
            signature.inputs.span(),
            "#[keyroute_testing::test] needs exactly one argument, the app: `app: TestApp<Postgres>`",
        ));
    };
    let app_type = &argument.ty;
    let name = &signature.ident;
    let output = &signature.output;
    let attributes = &function.attrs;
    let visibility = &function.vis;
    let body_name = syn::Ident::new("__keyroute_test_body", Span::call_site());
    let mut body = function.clone();
    body.sig.ident = body_name.clone();
    body.attrs.clear();
    body.vis = syn::Visibility::Inherited;
    let migrations = options.migrations.iter();
    let config = options.config.iter();
    let tenants = &options.tenants;
    let tenants = (!tenants.is_empty()).then(|| quote!(.tenants([#(#tenants),*])));
    Ok(quote! {
        #(#attributes)*
        #[::core::prelude::v1::test]
        #visibility fn #name() #output {
            #body
            let builder = <#app_type>::builder()
                #(.migrations(::std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(#migrations)))*
                #(.config_file(::std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(#config)))*
                #tenants;
            ::keyroute_testing::__private::run(builder, #body_name)
        }
    })
}
