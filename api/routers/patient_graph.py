"""A patient's subgraph as nodes and edges ready to draw (``GET /v1/patients/{id}/graph``).

Nodes: the patient; each concept it has a finding of (``finding``, with the finding's one-word
assertions, the strongest first); every other concept on a stored diagnosis's explanation path
(``concept``); each stored diagnosis (``diagnosis``, with its probability and rank; a finding
that is also a diagnosis is drawn as the diagnosis). Edges: ``HAS_FINDING`` from the patient per
concept and assertion (with the sentences or image probabilities behind it), the path steps
(the KG relation and its evidence, listing the paths that walk it), and ``PREDICTS`` from the
patient to each diagnosis. Each diagnosis lists its paths as edge ids, so a viewer can highlight
one path.
"""

from __future__ import annotations

from collections.abc import Sequence

from api.routers.v1_schemas import (
    GraphDiagnosis,
    GraphEdge,
    GraphNode,
    GraphPath,
    PatientGraph,
)
from graph.records import Finding, ImageEvidence, Patient
from graph.store import GraphStore, StoredPrediction

# the order a concept's assertions are listed in (the first is the node's assertion)
_STRENGTH = ("present", "possible", "historical", "absent")
MAX_EVIDENCE = 5  # sentences or image probabilities kept per HAS_FINDING edge


def _evidence(finding: Finding) -> str:
    provenance = finding.provenance
    if isinstance(provenance, ImageEvidence):
        return f"image {provenance.image_id} P={provenance.probability:.2f} ({provenance.model_id})"
    return f'"{provenance.sentence or provenance.text}"'


def patient_graph(
    store: GraphStore, patient: Patient, predictions: Sequence[StoredPrediction]
) -> PatientGraph:
    """The drawable graph of ``patient`` and its stored ``predictions`` (names read from
    ``store``; call with the store held)."""
    concept_ids = {f.concept_id for f in patient.findings}
    for stored in predictions:
        concept_ids.add(stored.diagnosis.concept_id)
        for path in stored.diagnosis.paths:
            concept_ids.update(n for n in path.nodes if n != patient.id)
    names = {cid: c.name for cid, c in store.get_concepts(concept_ids).items()}

    nodes: dict[str, GraphNode] = {
        patient.id: GraphNode(id=patient.id, kind="patient", label=f"patient {patient.id}")
    }
    edges: list[GraphEdge] = []
    edge_index: dict[tuple[str, str, str, str | None], GraphEdge] = {}

    def edge(source: str, target: str, type_: str, assertion: str | None = None) -> GraphEdge:
        key = (source, target, type_, assertion)
        found = edge_index.get(key)
        if found is None:
            found = GraphEdge(
                id=f"e{len(edges)}", source=source, target=target, type=type_, assertion=assertion
            )
            edges.append(found)
            edge_index[key] = found
        return found

    assertions: dict[str, set[str]] = {}
    for finding in patient.findings:
        word = finding.assertion.status
        assertions.setdefault(finding.concept_id, set()).add(word)
        step = edge(patient.id, finding.concept_id, "HAS_FINDING", word)
        text = _evidence(finding)
        if text not in step.evidence and len(step.evidence) < MAX_EVIDENCE:
            step.evidence.append(text)
    for concept_id, words in assertions.items():
        ordered = [w for w in _STRENGTH if w in words]
        nodes[concept_id] = GraphNode(
            id=concept_id,
            kind="finding",
            label=names.get(concept_id, concept_id),
            assertion=ordered[0],  # type: ignore[arg-type]
            assertions=ordered,  # type: ignore[arg-type]
        )

    diagnoses = []
    several_models = len({p.diagnosis.model_id for p in predictions}) > 1
    for stored in predictions:
        diagnosis = stored.diagnosis
        nodes[diagnosis.concept_id] = GraphNode(
            id=diagnosis.concept_id,
            kind="diagnosis",
            label=diagnosis.name,
            probability=diagnosis.probability,
            rank=stored.rank,
            assertion=nodes[diagnosis.concept_id].assertion
            if diagnosis.concept_id in nodes
            else None,
        )
        predicts = edge(patient.id, diagnosis.concept_id, f"PREDICTS:{diagnosis.model_id}")
        predicts.type = "PREDICTS"
        predicts.probability = diagnosis.probability
        predicts.model_id = diagnosis.model_id
        paths = []
        for index, path in enumerate(diagnosis.paths):
            path_id = f"{diagnosis.concept_id}#{index}"
            if several_models:
                path_id = f"{diagnosis.model_id}/{path_id}"
            step_ids = []
            for step, (src, dst, relation) in enumerate(
                zip(path.nodes, path.nodes[1:], path.relations, strict=False)
            ):
                for node in (src, dst):
                    if node not in nodes:
                        nodes[node] = GraphNode(
                            id=node, kind="concept", label=names.get(node, node)
                        )
                findings = [
                    e
                    for e in edges
                    if e.source == src == patient.id and e.target == dst and e.type == "HAS_FINDING"
                ]
                if relation.startswith("HAS_FINDING") and findings:
                    # the patient's own finding edge (an excluded one for HAS_FINDING_ABSENT)
                    wanted = "absent" if relation.endswith("ABSENT") else None
                    preferred = [e for e in findings if (e.assertion == "absent") == bool(wanted)]
                    walked = (preferred or findings)[0]
                else:
                    walked = edge(src, dst, relation)
                if step < len(path.evidence) and path.evidence[step]:
                    if path.evidence[step] not in walked.evidence:
                        walked.evidence.append(path.evidence[step])
                if path_id not in walked.paths:
                    walked.paths.append(path_id)
                step_ids.append(walked.id)
            paths.append(GraphPath(id=path_id, edges=step_ids, score=path.score))
        diagnoses.append(
            GraphDiagnosis(
                concept_id=diagnosis.concept_id,
                name=diagnosis.name,
                probability=diagnosis.probability,
                rank=stored.rank,
                model_id=diagnosis.model_id,
                kg_release=diagnosis.kg_release,
                paths=paths,
            )
        )
    return PatientGraph(
        patient_id=patient.id, nodes=list(nodes.values()), edges=edges, diagnoses=diagnoses
    )
