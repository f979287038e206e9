# NWB export: one <session>/nwb/<session>.nwb per experiment session, holding the products of the
# configured stages on one session clock (docs/nwb.md).
rule export_nwb:
    input:
        unpack(nwb_inputs),
    output:
        "{sroot}/nwb/{session}.nwb",
    log:
        "{sroot}/logs/export_nwb_{session}.log",
    benchmark:
        "{sroot}/benchmarks/export_nwb_{session}.tsv"
    wildcard_constraints:
        session=r"[^/]+",
    conda:
        "../envs/nwb.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        session=nwb_session,
        settings=NWB,
    script:
        "../scripts/nwb_export.py"
